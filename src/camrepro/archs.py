"""Facts about the backbone architectures that the plan checks without importing torch.

`camrepro.plan` reads them at every Snakemake parse; building a network to ask it would import
torch there (about 4 s on two cores). `tests/test_archs.py` checks each fact against the networks.
"""

from __future__ import annotations

# The architectures with no BatchNorm (the papers' VGG16 and AlexNet). Their pretraining in the
# embedded default trains with a BatchNorm after every conv, folded into the convs when saved
# (camrepro.weights.pretrain, models/batchnorm.py): without it these thin, deep, normalisation-free
# stacks do not leave the loss plateau in minutes. A recipe's `fold_bn` is valid for their networks only.
BATCHNORM_FREE = ("vgg16", "alexnet")
