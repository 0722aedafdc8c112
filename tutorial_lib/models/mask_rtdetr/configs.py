"""Resolved per-size hyper-parameters of Mask-RT-DETR (PaddleDetection mask_rtdetr_hgnetv2_*_6x_coco)."""

# stage rows: in_channels, mid_channels, out_channels, num_blocks, downsample, light_block, kernel_size, layer_num
HGNETV2_ARCHS = {
    "S": dict(stem_channels=[3, 24, 32], stage_config=[
        [32, 32, 64, 1, False, False, 3, 3],
        [64, 48, 256, 1, True, False, 3, 3],
        [256, 96, 512, 2, True, True, 5, 3],
        [512, 192, 1024, 1, True, True, 5, 3]]),
    "M": dict(stem_channels=[3, 24, 32], stage_config=[
        [32, 32, 96, 1, False, False, 3, 4],
        [96, 64, 384, 1, True, False, 3, 4],
        [384, 128, 768, 3, True, True, 5, 4],
        [768, 256, 1536, 1, True, True, 5, 4]]),
    "L": dict(stem_channels=[3, 32, 48], stage_config=[
        [48, 48, 128, 1, False, False, 3, 6],
        [128, 96, 512, 1, True, False, 3, 6],
        [512, 192, 1024, 3, True, True, 5, 6],
        [1024, 384, 2048, 1, True, True, 5, 6]]),
    "X": dict(stem_channels=[3, 32, 64], stage_config=[
        [64, 64, 128, 1, False, False, 3, 6],
        [128, 128, 512, 2, True, False, 3, 6],
        [512, 256, 1024, 5, True, True, 5, 6],
        [1024, 512, 2048, 2, True, True, 5, 6]]),
    "H": dict(stem_channels=[3, 48, 96], stage_config=[
        [96, 96, 192, 2, False, False, 3, 6],
        [192, 192, 512, 3, True, False, 3, 6],
        [512, 384, 1024, 6, True, True, 5, 6],
        [1024, 768, 2048, 3, True, True, 5, 6]]),
}

# neck (MaskHybridEncoder) per size; use_encoder_idx already counts without the stride-4 map
NECK_CONFIGS = {
    "S": dict(hidden_dim=256, expansion=0.5, use_encoder_idx=[1], num_encoder_layers=1,
              dim_feedforward=1024, mask_feat_channels=[64, 32]),
    "M": dict(hidden_dim=256, expansion=0.5, use_encoder_idx=[1], num_encoder_layers=1,
              dim_feedforward=1024, mask_feat_channels=[64, 64]),
    "L": dict(hidden_dim=256, expansion=1.0, use_encoder_idx=[2], num_encoder_layers=1,
              dim_feedforward=1024, mask_feat_channels=[64, 64]),
    "X": dict(hidden_dim=384, expansion=1.0, use_encoder_idx=[2], num_encoder_layers=1,
              dim_feedforward=2048, mask_feat_channels=[128, 128]),
    "H": dict(hidden_dim=512, expansion=1.0, use_encoder_idx=[2], num_encoder_layers=2,
              dim_feedforward=2048, mask_feat_channels=[256, 128]),
}

NUM_PROTOTYPES = {"S": 128, "M": 128, "L": 32, "X": 128, "H": 128}

# shared by every size
TRANSFORMER_CONFIG = dict(
    hidden_dim=256, num_queries=300, feat_strides=[8, 16, 32], num_levels=3, num_decoder_points=4,
    nhead=8, num_decoder_layers=6, dim_feedforward=1024, dropout=0.0, activation="relu",
    num_denoising=100, label_noise_ratio=0.5, box_noise_scale=1.0, learnt_init_query=False,
    query_pos_head_inv_sig=False, mask_enhanced=True, eval_idx=-1, eps=1e-2)

POSTPROCESS_CONFIG = dict(num_top_queries=100, mask_threshold=0.5)

LOSS_CONFIG = dict(
    loss_coeff={"class": 4, "bbox": 5, "giou": 2, "mask": 5, "dice": 5},
    matcher_coeff={"class": 4, "bbox": 5, "giou": 2, "mask": 5, "dice": 5},
    aux_loss=True, use_vfl=True, vfl_iou_type="mask",
    num_sample_points=12544, oversample_ratio=3.0, important_sample_ratio=0.75)

EVAL_SIZE = [640, 640]
SIZES = ("S", "M", "L", "X", "H")
