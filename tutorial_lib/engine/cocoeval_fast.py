"""Vectorised COCO bbox / segm evaluation that reproduces pycocotools' ``COCOeval`` (default parameters).

Why: profiling ``COCOeval`` shows ~70 % of its time in ``evaluateImg`` (a Python loop over image x category x
area range x IoU threshold x detection x ground truth) and most of the rest in ``accumulate`` (per category,
area range and maxDets it concatenates per-image lists) and in per-annotation RLE conversion. Here the same
greedy matching runs in numpy for all (image, category) pairs at once, one detection rank at a time, vectorised
over pairs, area ranges, thresholds and ground truths; accumulation is one pass over all detections per
maxDets; GT polygons are rasterised in one call per image size, only where a detection of their image and category
exists, and cached on the COCO object for the next evaluation. IoUs are pycocotools' own arithmetic (``mask.iou``
on RLEs for segm, one call per image; the same double-precision formula as its C ``bbIou`` for boxes), sort orders
are the same stable ones, so the precision / recall / score arrays and the 12 stats come out equal to pycocotools'
(tests/engine/test_cocoeval_fast.py checks it). What is left of the segm time is mostly pycocotools' C code
(polygon rasterisation, RLE decoding and IoU), which COCOeval pays too.

Reproduced quirks: detections sorted by ``-score`` with a stable sort (ties keep result order per image, then
image order across images); only the top 100 per image and category count; crowd ground truths match any number
of detections and count as ignored; a ground truth outside an area range is ignored in that range; an
unmatched detection outside it is ignored; a ground truth with id 0 counts as "unmatched" (pycocotools stores
matched ids and tests them against 0); segm detections get their area from the mask unless the first result
has a ``bbox``, in which case every area is ``w * h`` (``COCO.loadRes``); -1 where a category has no ground truth.
"""
from types import SimpleNamespace

import numpy as np
from pycocotools import mask as mask_utils

from ..errors import UserError

IOU_THRS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
REC_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
MAX_DETS = [1, 10, 100]
AREA_RNG = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
AREA_LBL = ["all", "small", "medium", "large"]
CACHE_ATTR = "_tutorial_lib_rles"  # GT RLEs kept on the COCO object between evaluations


class FastCOCOevalResult:
    """What ``coco_metrics`` reads from a ``COCOeval``: ``stats`` (12), ``eval`` (precision [T,R,K,A,M],
    recall [T,K,A,M], scores [T,R,K,A,M]) and ``params`` (imgIds, catIds, thresholds, ranges)."""

    def __init__(self, params, precision, recall, scores):
        self.params = params
        self.eval = {"params": params, "counts": list(precision.shape), "precision": precision, "recall": recall,
                     "scores": scores}
        self.stats = summarize(precision, recall, params)


def _expand(counts):
    """For groups of the given sizes: the group of each element and its position inside the group."""
    counts = np.asarray(counts, np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(int(counts.sum())) - starts[owner]


def _rles(segms, size_of, fallback):
    """Segmentations -> RLEs as ``COCO.annToRLE`` makes them; polygons of equal image size rasterised in one call."""
    out = list(segms)  # compressed RLEs are used as they are
    groups = {}
    for i, segm in enumerate(segms):
        if type(segm) is dict and type(segm.get("counts")) is not list:
            continue
        # frPyObjects picks its branch from the first element: only lists of >4-coordinate polygons batch safely
        if type(segm) is list and segm and type(segm[0]) is list and len(segm[0]) > 4:
            polys, owners = groups.setdefault(size_of(i), ([], []))
            polys.extend(segm)
            owners.extend([i] * len(segm))
        else:
            out[i] = fallback(i)
    for (height, width), (polys, owners) in groups.items():
        rles = mask_utils.frPyObjects(polys, height, width)
        owners = np.asarray(owners)
        bounds = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1], True])
        if len(bounds) - 1 == len(owners):  # one polygon each
            for i, rle in zip(owners.tolist(), rles):
                out[i] = rle
            continue
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            out[owners[lo]] = rles[lo] if hi - lo == 1 else mask_utils.merge(rles[lo:hi])
    return out


def _image_size(coco_gt, img_id):
    info = coco_gt.imgs[img_id]
    return info["height"], info["width"]


def _gt_arrays(coco_gt, img_ids, cat_index, iou_type):
    """Ground truths in COCOeval's order (image id sorted, annotation order inside an image)."""
    anns, img_pos = [], []
    for pos, img_id in enumerate(img_ids):
        found = [a for a in coco_gt.imgToAnns.get(img_id, ()) if a["category_id"] in cat_index]
        anns.extend(found)
        img_pos.extend([pos] * len(found))
    gt = SimpleNamespace(
        img=np.asarray(img_pos, np.int64),
        cat=np.asarray([cat_index[a["category_id"]] for a in anns], np.int64),
        area=np.asarray([a["area"] for a in anns], np.float64),
        crowd=np.asarray([bool(a.get("iscrowd", 0)) for a in anns], bool),
        nonzero_id=np.asarray([a["id"] != 0 for a in anns], bool),
        anns=anns)
    if iou_type == "bbox":
        gt.geom = np.asarray([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
    return gt


def _gt_rles(coco_gt, anns):
    """GT RLEs, cached on the COCO object for the next evaluation (as pycocotools, which rewrites the GT in place
    into RLEs, gets them on its second run); an entry is reused only for the very same segmentation object."""
    cache = coco_gt.__dict__.setdefault(CACHE_ATTR, {})
    out, todo = [], []
    for i, ann in enumerate(anns):
        hit = cache.get(id(ann))
        if hit is not None and hit[0] is ann["segmentation"] and hit[1] is ann:
            out.append(hit[2])
        else:
            out.append(None)
            todo.append(i)
    made = _rles([anns[i]["segmentation"] for i in todo], lambda j: _image_size(coco_gt, anns[todo[j]]["image_id"]),
                 lambda j: coco_gt.annToRLE(anns[todo[j]]))
    for i, rle in zip(todo, made):
        out[i] = rle
        cache[id(anns[i])] = (anns[i]["segmentation"], anns[i], rle)  # holding both keeps id() unambiguous
    return out


def _dt_arrays(coco_gt, results, img_index, cat_index, iou_type):
    """Detections the way ``COCO.loadRes`` + ``COCOeval._prepare`` see them, in result order."""
    kept = [r for r in results if r["category_id"] in cat_index]  # COCOeval drops unknown categories
    box_areas = bool(results) and "bbox" in results[0] and results[0]["bbox"] != []  # loadRes' branch
    dt = SimpleNamespace(
        img=np.asarray([img_index[r["image_id"]] for r in kept], np.int64),
        cat=np.asarray([cat_index[r["category_id"]] for r in kept], np.int64),
        score=np.asarray([r["score"] for r in kept], np.float64))
    rles = None
    if iou_type == "segm" or not box_areas:
        rles = _rles([r["segmentation"] for r in kept], lambda i: _image_size(coco_gt, kept[i]["image_id"]),
                     lambda i: _fallback_rle(kept[i]["segmentation"], _image_size(coco_gt, kept[i]["image_id"])))
    if box_areas:
        boxes = np.asarray([r["bbox"] for r in kept], np.float64).reshape(-1, 4)
        dt.area = boxes[:, 2] * boxes[:, 3]
    else:
        # chunks of 255: pycocotools' area() sizes a scratch uint8 array with the count (numpy warns above 255)
        dt.area = np.concatenate([np.zeros(0)] + [np.asarray(mask_utils.area(rles[i:i + 255]), np.float64)
                                                  for i in range(0, len(rles), 255)])
    if iou_type == "bbox":
        dt.geom = boxes if box_areas else np.asarray(
            [r["bbox"] if "bbox" in r else mask_utils.toBbox(rle) for r, rle in zip(kept, rles)],
            np.float64).reshape(-1, 4)
    else:
        dt.geom = rles
    return dt


def check_iou_type(iou_type):
    if iou_type not in ("segm", "bbox"):
        raise UserError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}")


def check_image_ids(coco_gt, results):
    unknown = {r["image_id"] for r in results} - set(coco_gt.imgs)
    if unknown:
        raise UserError(f"{len(unknown)} result image ids are not in the ground truth (e.g. {sorted(unknown)[:3]}); "
                        "evaluate predictions against the split they were made on")


def default_params(img_ids, cat_ids, iou_type):
    """COCOeval's default ``Params`` for detection, as the attributes ``coco_metrics`` and ``summarize`` read."""
    return SimpleNamespace(imgIds=list(img_ids), catIds=list(cat_ids), iouThrs=IOU_THRS, recThrs=REC_THRS,
                           maxDets=list(MAX_DETS), areaRng=AREA_RNG, areaRngLbl=AREA_LBL, iouType=iou_type,
                           useCats=1)


def _fallback_rle(segm, size):
    rles = mask_utils.frPyObjects(segm, *size)
    return mask_utils.merge(rles) if type(segm) is list else rles


def _box_iou(d, g, crowd):
    """pycocotools' bbIou, element-wise on matching rows, same double-precision operations."""
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    da, ga = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
    union = np.where(crowd, da, da + ga - inter)
    out = np.zeros(len(d))
    ok = (w > 0) & (h > 0)
    out[ok] = inter[ok] / union[ok]
    return out


def _pair_ious(coco_gt, gt, dt, both, num_imgs):
    """IoU of every (detection, ground truth) of the same (image, category), flattened pair by pair, row-major."""
    n_d, n_g, d_start, g_start = both.D, both.G, both.d_start, both.g_start
    owner, within = _expand(n_d * n_g)
    d_idx = d_start[owner] + within // n_g[owner]
    g_idx = g_start[owner] + within % n_g[owner]
    if not len(d_idx):
        return np.zeros(0)
    if hasattr(gt, "geom"):
        return _box_iou(dt.geom[d_idx], gt.geom[g_idx], gt.crowd[g_idx])
    # segm: one pycocotools mask.iou call per image over the detections and ground truths of its matched pairs
    in_d = np.zeros(len(dt.img), bool)
    owner, within = _expand(n_d)
    in_d[d_start[owner] + within] = True
    in_g = np.zeros(len(gt.img), bool)
    owner, within = _expand(n_g)
    in_g[g_start[owner] + within] = True
    d_sel, g_sel = np.flatnonzero(in_d), np.flatnonzero(in_g)
    d_img, g_img = dt.img[d_sel], gt.img[g_sel]
    d_lo = np.searchsorted(d_img, np.arange(num_imgs + 1))  # compressed rows per image (arrays are image-major)
    g_lo = np.searchsorted(g_img, np.arange(num_imgs + 1))
    d_loc = np.full(len(dt.img), -1, np.int64)
    d_loc[d_sel] = np.arange(len(d_sel)) - d_lo[d_img]
    g_loc = np.full(len(gt.img), -1, np.int64)
    g_loc[g_sel] = np.arange(len(g_sel)) - g_lo[g_img]
    n_dimg, n_gimg = np.diff(d_lo), np.diff(g_lo)
    g_rles = _gt_rles(coco_gt, [gt.anns[j] for j in g_sel])  # only the ground truths that meet a detection
    offsets = np.r_[0, np.cumsum(n_dimg * n_gimg)]
    flat = np.zeros(int(offsets[-1]))
    crowd = gt.crowd.astype(np.uint8)
    for i in np.flatnonzero(n_dimg * n_gimg).tolist():
        ds = [dt.geom[j] for j in d_sel[d_lo[i]:d_lo[i + 1]]]
        gs, crowd_i = g_rles[g_lo[i]:g_lo[i + 1]], crowd[g_sel[g_lo[i]:g_lo[i + 1]]].tolist()
        flat[offsets[i]:offsets[i + 1]] = np.asarray(mask_utils.iou(ds, gs, crowd_i)).ravel()
    img = dt.img[d_idx]
    return flat[offsets[img] + d_loc[d_idx] * n_gimg[img] + g_loc[g_idx]]


def _segment_cumsum(values, owner):
    """Cumulative sum along axis 0 restarting at each new owner (owners contiguous, increasing)."""
    total = np.cumsum(values, axis=0)
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    before = np.concatenate([np.zeros((1,) + total.shape[1:], total.dtype), total[first[1:] - 1]])
    return total - np.repeat(before, np.diff(np.r_[first, len(owner)]), axis=0)


def _match(both, ious, crowd, gt_ignore, num_area):
    """COCOeval.evaluateImg's greedy matching for all pairs, vectorised over pairs, areas, thresholds and GTs.

    For each detection (score order) and threshold, the candidates are the ground truths with IoU >= threshold
    that are crowd or still free; a non-ignored candidate wins over ignored ones; among the winners the highest
    IoU, ties to the last ground truth (pycocotools scans non-ignored then ignored GTs keeping ``>=`` matches).
    Returns, per detection row of each pair (flattened like ``_expand(both.D)``), matched [A, T] and GT index.
    """
    thr = np.minimum(IOU_THRS, 1 - 1e-10)
    num_thr = len(thr)
    out_matched = np.zeros((int(both.D.sum()), num_area, num_thr), bool)
    out_gt = np.zeros((int(both.D.sum()), num_area, num_thr), np.int64)
    row_start = np.cumsum(both.D) - both.D
    tri_start = np.cumsum(both.D * both.G) - both.D * both.G
    # pairs grouped by their number of GTs (padded to a power of two above 16), most detections first
    g_bucket = np.where(both.G <= 16, both.G, 1 << np.ceil(np.log2(np.maximum(both.G, 1))).astype(np.int64))
    for gb in np.unique(g_bucket).tolist():
        sel = np.flatnonzero(g_bucket == gb)
        sel = sel[np.argsort(-both.D[sel], kind="stable")]  # pairs with more than r detections: a prefix
        num_d, num_g, g_start = both.D[sel], both.G[sel], both.g_start[sel]
        if gb == 1:  # one GT: the first detection over a threshold takes it (a crowd GT takes every one)
            owner, rank = _expand(num_d)
            over = ious[tri_start[sel][owner] + rank][:, None] >= thr
            found = over & (crowd[g_start][owner][:, None] | (_segment_cumsum(over, owner) == 1))
            rows = row_start[sel][owner] + rank
            out_matched[rows] = found[:, None, :]
            out_gt[rows] = g_start[owner][:, None, None]
            continue
        g_pos = np.minimum(np.arange(gb), num_g[:, None] - 1)  # (n, gb); padded GT columns repeat the last
        padded = np.arange(gb) >= num_g[:, None]
        g_idx = g_start[:, None] + g_pos
        is_crowd = crowd[g_idx]
        ignored = gt_ignore[g_idx].transpose(0, 2, 1)  # (n, A, gb)
        matched = np.zeros((len(sel), num_area, num_thr, gb), bool)
        active = np.searchsorted(-num_d, -np.arange(int(num_d.max())), side="left")
        for r, na in enumerate(active.tolist()):
            row = ious[tri_start[sel[:na], None] + r * num_g[:na, None] + g_pos[:na]]
            row[padded[:na]] = -1.0
            over = row[:, None, None, :] >= thr[None, None, :, None]  # (na, 1, T, G)
            avail = over & (is_crowd[:na, None, None, :] | ~matched[:na])
            regular = avail & ~ignored[:na, :, None, :]
            has_regular = regular.any(-1)
            cand = np.where(has_regular[..., None], regular, avail)
            found = has_regular | avail.any(-1)
            key = np.where(cand, row[:, None, None, :], -2.0)
            best = gb - 1 - np.argmax(key[..., ::-1], axis=-1)  # last of the highest
            hit = found.ravel()
            matched[:na].reshape(-1, gb)[np.flatnonzero(hit), best.ravel()[hit]] = True
            rows = row_start[sel[:na]] + r
            out_matched[rows] = found
            out_gt[rows] = g_start[:na, None, None] + best
    return out_matched, out_gt


def evaluate(coco_gt, results, iou_type="segm"):
    """Evaluate COCO result dicts (``image_id``, ``category_id``, ``score``, ``bbox`` or RLE ``segmentation``)
    against ``coco_gt`` (a ``pycocotools.coco.COCO``) over all its images and categories, like ``loadRes`` +
    ``COCOeval(coco_gt, dt, iou_type).evaluate(); accumulate(); summarize()``. Neither input is modified."""
    check_iou_type(iou_type)
    check_image_ids(coco_gt, results)
    img_ids = [int(i) if isinstance(i, np.integer) else i for i in np.unique(coco_gt.getImgIds())]
    cat_ids = [int(i) if isinstance(i, np.integer) else i for i in np.unique(coco_gt.getCatIds())]
    img_index = {i: n for n, i in enumerate(img_ids)}
    cat_index = {c: n for n, c in enumerate(cat_ids)}
    num_imgs, num_cats, num_area = len(img_ids), len(cat_ids), len(AREA_RNG)
    gt = _gt_arrays(coco_gt, img_ids, cat_index, iou_type)
    dt = _dt_arrays(coco_gt, results, img_index, cat_index, iou_type)
    lo = np.asarray([a[0] for a in AREA_RNG], np.float64)
    hi = np.asarray([a[1] for a in AREA_RNG], np.float64)
    gt_ignore = gt.crowd[:, None] | (gt.area[:, None] < lo) | (gt.area[:, None] > hi)  # (G, A)
    dt_outside = (dt.area[:, None] < lo) | (dt.area[:, None] > hi)  # (D, A)

    # order GTs by (image, category) keeping annotation order; detections by (image, category, -score, result order)
    g_order = np.argsort(gt.img * num_cats + gt.cat, kind="stable")
    gt = SimpleNamespace(**{k: (v[g_order] if isinstance(v, np.ndarray) else [v[i] for i in g_order])
                            for k, v in vars(gt).items()})
    gt_ignore = gt_ignore[g_order]
    d_key = dt.img * num_cats + dt.cat
    d_order = np.lexsort((np.arange(len(d_key)), -dt.score, d_key))
    d_key = d_key[d_order]
    _, d_start, d_count = np.unique(d_key, return_index=True, return_counts=True)
    rank = np.arange(len(d_key)) - np.repeat(d_start, d_count)
    keep = rank < MAX_DETS[-1]
    d_order, rank = d_order[keep], rank[keep]
    dt = SimpleNamespace(**{k: (v[d_order] if isinstance(v, np.ndarray) else [v[i] for i in d_order])
                            for k, v in vars(dt).items()})
    dt_outside = dt_outside[d_order]
    uniq_d, d_start, d_count = np.unique(d_key[keep], return_index=True, return_counts=True)
    uniq_g, g_start, g_count = np.unique(gt.img * num_cats + gt.cat, return_index=True, return_counts=True)

    # pairs with both detections and ground truths: IoUs and greedy matching
    _, in_d, in_g = np.intersect1d(uniq_d, uniq_g, assume_unique=True, return_indices=True)
    both = SimpleNamespace(D=d_count[in_d], G=g_count[in_g], d_start=d_start[in_d], g_start=g_start[in_g])
    ious = _pair_ious(coco_gt, gt, dt, both, num_imgs)
    num_thr = len(IOU_THRS)
    matched = np.zeros((len(dt.img), num_area, num_thr), bool)
    match_gt = np.full((len(dt.img), num_area, num_thr), len(gt.img), np.int64)  # unmatched -> a padding row
    if len(both.D):
        pair_matched, pair_gt = _match(both, ious, gt.crowd, gt_ignore, num_area)
        owner, r = _expand(both.D)
        rows = both.d_start[owner] + r
        matched[rows], match_gt[rows] = pair_matched, pair_gt
    # evaluateImg's dtIg and accumulate's tps / fps (a match to a GT with id 0 reads as no match there)
    real = matched & np.r_[gt.nonzero_id, False][match_gt]
    gt_ign = np.concatenate([gt_ignore, np.zeros((1, num_area), bool)])
    ign = (matched & gt_ign[match_gt, np.arange(num_area)[None, :, None]]) | (~real & dt_outside[:, :, None])
    tps, fps = real & ~ign, ~real & ~ign
    npig = np.zeros((num_cats, num_area), np.int64)
    for a in range(num_area):
        npig[:, a] = np.bincount(gt.cat[~gt_ignore[:, a]], minlength=num_cats)
    return _accumulate(dt, rank, tps, fps, npig, img_ids, cat_ids, iou_type)


def _restart(cumulative, lo, count):
    """Per-category running sums from a global cumulative sum along the last axis (categories contiguous)."""
    before = np.concatenate([np.zeros(cumulative.shape[:-1] + (1,), cumulative.dtype), cumulative], axis=-1)
    return cumulative - np.repeat(before[..., lo], count, axis=-1)  # np.repeat keeps the result C-contiguous


def _accumulate(dt, rank, tps, fps, npig, img_ids, cat_ids, iou_type):
    """COCOeval.accumulate on flat arrays: per category, detections in (-score, image, rank) order."""
    num_thr, num_rec, num_cats, num_area, num_m = len(IOU_THRS), len(REC_THRS), len(cat_ids), len(AREA_RNG), 3
    precision = -np.ones((num_thr, num_rec, num_cats, num_area, num_m))
    recall = -np.ones((num_thr, num_cats, num_area, num_m))
    scores = -np.ones((num_thr, num_rec, num_cats, num_area, num_m))
    order = np.lexsort((rank, dt.img, -dt.score, dt.cat))
    cat_s, rank_s, score_s = dt.cat[order], rank[order], dt.score[order]
    # (A, T, N) int32, detections on the contiguous axis: numpy's cumsum is ~10x faster that way than on bools
    tp_all = np.ascontiguousarray(tps[order].transpose(1, 2, 0), dtype=np.int32)
    fp_all = np.ascontiguousarray(fps[order].transpose(1, 2, 0), dtype=np.int32)
    valid = npig > 0  # (K, A)
    # searchsorted(rc, recThrs) without a loop: rc = tp / npig is monotone in the integer tp, so
    # rc < thr  <=>  tp < (smallest j with j / npig >= thr), the same float divisions as pycocotools'
    first_tp = np.stack([np.searchsorted(np.arange(n + 1, dtype=float) / n, REC_THRS, side="left")
                         for n in np.maximum(npig, 1).ravel().tolist()]).reshape(num_cats, num_area, 1, num_rec)
    cats = np.arange(num_cats)
    rows = np.arange(num_area * num_thr).reshape(num_area, num_thr)
    for m, max_det in enumerate(MAX_DETS):
        sel = rank_s < max_det
        cat_m, score_m = cat_s[sel], score_s[sel]
        n = len(cat_m)
        lo, hi = np.searchsorted(cat_m, cats), np.searchsorted(cat_m, cats, side="right")
        nd = hi - lo
        # np.compress, not x[..., sel]: boolean indexing of the last axis returns a transposed layout (slow cumsum)
        tp_int, fp_int = (_restart(np.cumsum(x if sel.all() else np.compress(sel, x, axis=-1), axis=-1,
                                             dtype=np.int32), lo, nd) for x in (tp_all, fp_all))
        tp, fp = tp_int.astype(float), fp_int.astype(float)
        pr = tp / (fp + tp + np.spacing(1))  # (A, T, n)
        for k in np.flatnonzero(nd).tolist():  # precision envelope, per category
            pr[..., lo[k]:hi[k]] = np.maximum.accumulate(pr[..., lo[k]:hi[k]][..., ::-1], axis=-1)[..., ::-1]
        rc_last = np.zeros((num_cats, num_area, num_thr))
        has = nd > 0
        rc_last[has] = tp[..., hi[has] - 1].transpose(2, 0, 1) / np.maximum(npig[has], 1)[..., None]
        # one searchsorted for every (area, threshold, category) row: integer offsets keep the rows apart
        stride = int(max(nd.max(initial=0), npig.max(initial=0))) + 2
        offset = (rows[None] * num_cats + cats[:, None, None]) * stride  # (K, A, T)
        pos = np.searchsorted((tp_int + np.repeat(offset.transpose(1, 2, 0), nd, axis=-1)).ravel(),
                              (first_tp + offset[..., None]).ravel(), side="left").reshape(offset.shape + (-1,))
        within = pos - rows[None, :, :, None] * n  # index into the category-sorted detections
        ok = within - lo[:, None, None, None] < nd[:, None, None, None]  # (K, A, T, R)
        safe = np.minimum(within, max(n - 1, 0))
        if n:
            q = np.where(ok, pr.ravel()[rows[None, :, :, None] * n + safe], 0.0)
            ss = np.where(ok, score_m[safe], 0.0)
        else:
            q = ss = np.zeros(ok.shape)
        keep = valid[:, :, None, None]
        precision[..., m] = np.where(keep, q, -1.0).transpose(2, 3, 0, 1)  # (K,A,T,R) -> (T,R,K,A)
        scores[..., m] = np.where(keep, ss, -1.0).transpose(2, 3, 0, 1)
        recall[..., m] = np.where(valid[..., None], rc_last, -1.0).transpose(2, 0, 1)  # (K,A,T) -> (T,K,A)
    return FastCOCOevalResult(default_params(img_ids, cat_ids, iou_type), precision, recall, scores)


def summarize(precision, recall, params):
    """COCOeval.summarize's 12 detection stats (-1 where nothing was evaluated), without printing."""
    def one(ap, iou_thr=None, area="all", max_dets=100):
        a = [i for i, lbl in enumerate(params.areaRngLbl) if lbl == area]
        m = [i for i, d in enumerate(params.maxDets) if d == max_dets]
        s = precision if ap else recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == params.iouThrs)[0]]
        s = s[:, :, :, a, m] if ap else s[:, :, a, m]
        return -1 if len(s[s > -1]) == 0 else np.mean(s[s > -1])

    md = params.maxDets
    return np.array([one(1), one(1, .5, max_dets=md[2]), one(1, .75, max_dets=md[2]),
                     one(1, area="small", max_dets=md[2]), one(1, area="medium", max_dets=md[2]),
                     one(1, area="large", max_dets=md[2]), one(0, max_dets=md[0]), one(0, max_dets=md[1]),
                     one(0, max_dets=md[2]), one(0, area="small", max_dets=md[2]),
                     one(0, area="medium", max_dets=md[2]), one(0, area="large", max_dets=md[2])])
