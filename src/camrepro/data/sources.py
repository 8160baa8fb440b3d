"""Registry of the real datasets: archives (URL + checksum) and the split protocol each paper used.

Checksums are the published ones where a publisher or torchvision states them. Where none is
published (`md5`/`sha256` both None) the downloader pins the SHA-256 of the first complete download
(see `download.py`), so later runs and other machines are checked against it.

ImageNet cannot be downloaded without an account: its archives are `manual` and the prepare step
says exactly which files to put where.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from camrepro.errors import CamreproError


@dataclass(frozen=True)
class Archive:
    key: str  # short name, also the extraction folder under raw/<source>/
    filename: str
    url: str | None  # None: the user supplies the file (ImageNet)
    md5: str | None = None
    sha256: str | None = None
    extract: bool = True

    @property
    def manual(self) -> bool:
        return self.url is None


@dataclass(frozen=True)
class Source:
    name: str
    title: str
    homepage: str
    archives: tuple[Archive, ...]
    protocol: str  # the split protocol, in words; the preparer implements exactly this
    task: str = "classification"  # wsol | classification | multilabel
    manual_help: str = ""
    params: dict = field(default_factory=dict)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            name="cub",
            title="CUB-200-2011",
            homepage="https://www.vision.caltech.edu/datasets/cub_200_2011/",
            archives=(
                Archive(
                    "CUB_200_2011",
                    "CUB_200_2011.tgz",
                    "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
                    md5="97eceeb196236b17998738112f37df78",
                ),
            ),
            protocol="Official train_test_split.txt: 5,994 train / 5,794 test images, 200 classes. "
            "Boxes from bounding_boxes.txt (x, y, width, height in float pixels) converted to "
            "x0=int(x), y0=int(y), x1=int(x+width), y1=int(y+height), the conversion of the "
            "wsolevaluation metadata.",
            task="wsol",
        ),
        Source(
            name="imagenet",
            title="ImageNet ILSVRC2012 (CLS-LOC)",
            homepage="https://image-net.org/challenges/LSVRC/2012/",
            archives=(
                Archive(
                    "train",
                    "ILSVRC2012_img_train.tar",
                    None,
                    md5="1d675b47d978889d74fa0da5fadfb00e",
                ),
                Archive("val", "ILSVRC2012_img_val.tar", None, md5="29b22e2961454d5413ddabcf34fc5622"),
                Archive("bbox_val", "ILSVRC2012_bbox_val_v3.tgz", None),
                # the development kit (md5 as torchvision.datasets.ImageNet checks it): its
                # data/ILSVRC2012_validation_blacklist.txt, one 1-based val image number a line
                Archive("devkit", "ILSVRC2012_devkit_t12.tar.gz", None,
                        md5="fa75699e90414af021442c21a62c3abf"),
            ),
            protocol="train: the 1.28M training images (labels from their synset folder). val: the "
            "50,000 validation images with every GT box of each image from the bounding-box XMLs "
            "(xmin, ymin, xmax, ymax taken as x0, y0, x1, y1); label = the synset of the boxes. "
            "Classes are the 1,000 synsets in sorted order (torchvision's class indices). The test "
            "labels are not public, so the CAM paper's test-set rows are evaluated on val. The "
            "devkit's 1,762 blacklisted val images are listed (val/blacklist.txt) for the evaluations "
            "that leave them out of localization (datasets.<name>.val_blacklist).",
            task="wsol",
            manual_help="ImageNet needs an account at image-net.org. Download "
            "ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar (Development kit page: 'Training "
            "images (Task 1 & 2)' and 'Validation images (all tasks)') and "
            "ILSVRC2012_bbox_val_v3.tgz ('Validation bounding box annotations (all tasks)') and "
            "ILSVRC2012_devkit_t12.tar.gz ('Development kit (Task 1 & 2)') and put the four files in "
            "{folder}.",
        ),
        Source(
            name="skimage-photos",
            title="scikit-image's bundled photos (4 images, ImageNet classes)",
            homepage="https://scikit-image.org/docs/stable/api/skimage.data.html",
            archives=(),  # the installed scikit-image wheel holds them: nothing to download
            protocol="One test split of the 4 photos of skimage/data whose object is an ImageNet class "
            "(chelsea.png, coffee.png, motorcycle_left.png, rocket.jpg), one GT box each drawn by hand "
            "(camrepro.data.photos says how), labels and allowed classes in ImageNet's 1000 classes "
            "(torchvision's order).",
            task="wsol",
        ),
        Source(
            name="sun397",
            title="SUN397",
            homepage="https://vision.princeton.edu/projects/2010/SUN/",
            archives=(
                Archive(
                    "images",
                    "SUN397.tar.gz",
                    "http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz",
                    md5="8ca2778205c41d23104230ba66911c7a",
                ),
                Archive(
                    "partitions",
                    "Partitions.zip",
                    "https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip",
                ),
            ),
            protocol="First of the ten official partitions (Training_01.txt / Testing_01.txt): 50 "
            "train and 50 test images per class, 397 classes (Xiao et al. 2010; Zhou et al. 2014).",
        ),
        Source(
            name="indoor67",
            title="MIT Indoor67",
            homepage="https://web.mit.edu/torralba/www/indoor.html",
            archives=(
                Archive(
                    "images",
                    "indoorCVPR_09.tar",
                    "http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar",
                ),
                Archive(
                    "train_list",
                    "TrainImages.txt",
                    "https://web.mit.edu/torralba/www/TrainImages.txt",
                    extract=False,
                ),
                Archive(
                    "test_list",
                    "TestImages.txt",
                    "https://web.mit.edu/torralba/www/TestImages.txt",
                    extract=False,
                ),
            ),
            protocol="Official split (TrainImages.txt / TestImages.txt): about 80 train and 20 test "
            "images per class, 67 classes (Quattoni & Torralba 2009).",
        ),
        Source(
            name="scene15",
            title="Scene15",
            homepage="https://www.di.ens.fr/willow/pdfs/cvpr06b.pdf",
            archives=(
                Archive(
                    "images",
                    "scene_categories.zip",
                    "http://www-cvr.ai.uiuc.edu/ponce_grp/data/scene_categories/scene_categories.zip",
                ),
            ),
            protocol="100 random train images per class, the rest test, 15 classes (Lazebnik et "
            "al. 2006); the random draw is seeded and recorded.",
            params={"train_per_class": 100, "test_per_class": None},
        ),
        Source(
            name="sunattribute",
            title="SUN Attribute",
            homepage="https://cs.brown.edu/~gmpatter/sunattributes.html",
            archives=(
                Archive(
                    "images",
                    "SUNAttributeDB_Images.tar.gz",
                    "https://cs.brown.edu/~gmpatter/Attributes/SUNAttributeDB_Images.tar.gz",
                ),
                Archive(
                    "labels",
                    "SUNAttributeDB.tar.gz",
                    "https://cs.brown.edu/~gmpatter/Attributes/SUNAttributeDB.tar.gz",
                ),
            ),
            protocol="14,340 images, 102 attributes; an attribute is present when at least 2 of 3 "
            "annotators voted for it (continuous label >= 0.5). Multi-label: one linear SVM per "
            "attribute, mean average precision. Split: seeded random half train / half test "
            "(the CAM paper follows Zhou et al. 2014, which does not publish its split).",
            task="multilabel",
        ),
        Source(
            name="caltech101",
            title="Caltech101",
            homepage="https://data.caltech.edu/records/mzrjq-6wc02",
            archives=(
                Archive(
                    "images",
                    "caltech-101.zip",
                    "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip",
                ),
            ),
            protocol="30 random train images per class and up to 50 of the rest as test, 101 "
            "classes (BACKGROUND_Google excluded), as in Zhou et al. 2014 / DeCAF; seeded.",
            params={"train_per_class": 30, "test_per_class": 50, "exclude": ["BACKGROUND_Google"]},
        ),
        Source(
            name="caltech256",
            title="Caltech256",
            homepage="https://data.caltech.edu/records/nyy15-4j048",
            archives=(
                Archive(
                    "images",
                    "256_ObjectCategories.tar",
                    "https://data.caltech.edu/records/nyy15-4j048/files/256_ObjectCategories.tar",
                    md5="67b4f42ca05d46448c6bb8ecd2220f6d",
                ),
            ),
            protocol="60 random train images per class, the rest test, 256 classes (257.clutter "
            "excluded), as in Zhou et al. 2014; seeded.",
            params={"train_per_class": 60, "test_per_class": None, "exclude": ["257.clutter"]},
        ),
        Source(
            name="action40",
            title="Stanford Action40",
            homepage="http://vision.stanford.edu/Datasets/40actions.html",
            archives=(
                Archive(
                    "images",
                    "Stanford40_JPEGImages.zip",
                    "http://vision.stanford.edu/Datasets/Stanford40_JPEGImages.zip",
                ),
                Archive(
                    "splits",
                    "Stanford40_ImageSplits.zip",
                    "http://vision.stanford.edu/Datasets/Stanford40_ImageSplits.zip",
                ),
            ),
            protocol="Official split (ImageSplits/<action>_train.txt, <action>_test.txt): 100 "
            "train images per class, the rest test, 40 classes (Yao et al. 2011).",
        ),
        Source(
            name="event8",
            title="UIUC Event8",
            homepage="http://vision.stanford.edu/lijiali/event_dataset/",
            archives=(
                Archive(
                    "images",
                    "event_dataset.rar",
                    "http://vision.stanford.edu/lijiali/event_dataset/event_dataset.rar",
                ),
            ),
            protocol="70 random train and 60 random test images per class, 8 classes (Li & "
            "Fei-Fei 2007); seeded.",
            params={"train_per_class": 70, "test_per_class": 60},
        ),
    ]
}


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise CamreproError(f"unknown dataset {name!r}; choose one of: {', '.join(SOURCES)}.")
    return SOURCES[name]


# Published image counts per split (and classes) under each protocol above, for estimates before
# a dataset is prepared (camrepro.cost). Caltech101's test split is at most 50 per class: its
# upper bound is given.
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "imagenet": {"train": 1_281_167, "val": 50_000, "classes": 1000},
    "cub": {"train": 5_994, "test": 5_794, "classes": 200},
    "sun397": {"train": 19_850, "test": 19_850, "classes": 397},
    "indoor67": {"train": 5_360, "test": 1_340, "classes": 67},
    "scene15": {"train": 1_500, "test": 2_985, "classes": 15},
    "sunattribute": {"train": 7_170, "test": 7_170, "classes": 102},
    "caltech101": {"train": 3_030, "test": 5_050, "classes": 101},
    "caltech256": {"train": 15_360, "test": 14_420, "classes": 256},
    "action40": {"train": 4_000, "test": 5_532, "classes": 40},
    "event8": {"train": 560, "test": 480, "classes": 8},
}
