"""The 10 NWPU VHR-10 classes, in the order of the tutorial's ``intseg_remote_sense_coco`` dataset."""

NWPU_CLASSES = (
    "airplane",
    "storage_tank",
    "vehicle",
    "tennis_court",
    "baseball_diamond",
    "ship",
    "harbor",
    "basketball_court",
    "ground_track_field",
    "bridge",
)

# Instances per class in NWPU VHR-10 (Cheng et al., 2016); the sample generator draws classes in
# these proportions so that its class imbalance resembles the real data.
NWPU_INSTANCE_COUNTS = {
    "airplane": 757,
    "storage_tank": 655,
    "vehicle": 477,
    "tennis_court": 524,
    "baseball_diamond": 390,
    "ship": 302,
    "harbor": 224,
    "basketball_court": 159,
    "ground_track_field": 163,
    "bridge": 124,
}


def coco_categories(names=NWPU_CLASSES):
    """COCO ``categories`` entries with ids 1..N in the given order."""
    return [{"id": i + 1, "name": name, "supercategory": "remote_sensing"} for i, name in enumerate(names)]


# The 80 COCO classes in category-id order: the label list of PaddleDetection's official (COCO-trained) weights.
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
