#!/usr/bin/env bash
# ILA-DA + BSP: the Digits, Office-31 and Office-Home lines of tllib's bsp.sh with its flags,
# plus the paper's k and mu for each dataset (the README says which of tllib's lines are left out);
# every other ILA-DA setting is the script's default. Run from examples/domain_adaptation/:
#   cd examples/domain_adaptation && bash ila_bsp.sh
# Baseline (tllib's recipe, same code): add --ila-trade-off 0. Logs: logs/ila_bsp/<Task>, as tllib's.

# Digits: k = 3, mu = 0.75
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/digits -d Digits -s MNIST -t USPS --train-resizing 'res.' --val-resizing 'res.' --resize-size 28 --no-hflip --norm-mean 0.5 --norm-std 0.5 -a lenet --no-pool -b 128 -i 2500 --scratch --seed 0 --lr 0.01 --trade-off-bsp 0.0001 --k 3 --mu 0.75 --log logs/ila_bsp/MNIST2USPS
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/digits -d Digits -s USPS -t MNIST --train-resizing 'res.' --val-resizing 'res.' --resize-size 28 --no-hflip --norm-mean 0.5 --norm-std 0.5 -a lenet --no-pool -b 128 -i 2500 --scratch --seed 0 --lr 0.1 --trade-off-bsp 0.0001 --k 3 --mu 0.75 --log logs/ila_bsp/USPS2MNIST
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/digits -d Digits -s SVHNRGB -t MNISTRGB --train-resizing 'res.' --val-resizing 'res.' --resize-size 32 --no-hflip --norm-mean 0.5 0.5 0.5 --norm-std 0.5 0.5 0.5 -a dtn --no-pool -b 128 -i 2500 --scratch --seed 0 --lr 0.1 --trade-off-bsp 0.0001 --pretrain-epochs 1 --k 3 --mu 0.75 --log logs/ila_bsp/SVHN2MNIST

# Office-31 (ResNet-50): k = 5, mu = 0.67
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office31 -d Office31 -s A -t W -a resnet50 --epochs 20 --seed 1 --k 5 --mu 0.67 --log logs/ila_bsp/Office31_A2W
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office31 -d Office31 -s D -t W -a resnet50 --epochs 20 --seed 1 --k 5 --mu 0.67 --log logs/ila_bsp/Office31_D2W
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office31 -d Office31 -s W -t D -a resnet50 --epochs 20 --seed 1 --k 5 --mu 0.67 --log logs/ila_bsp/Office31_W2D
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office31 -d Office31 -s A -t D -a resnet50 --epochs 20 --seed 1 --k 5 --mu 0.67 --log logs/ila_bsp/Office31_A2D
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office31 -d Office31 -s D -t A -a resnet50 --epochs 20 --seed 1 --k 5 --mu 0.67 --log logs/ila_bsp/Office31_D2A
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office31 -d Office31 -s W -t A -a resnet50 --epochs 20 --seed 1 --k 5 --mu 0.67 --log logs/ila_bsp/Office31_W2A

# Office-Home (ResNet-50): the paper gives no k/mu, Office-31's mu is used; 2 samples per class keep ILA's
# source batch at 130 images for its 65 classes, and k = 3 lets the right class hold a majority of the vote
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Ar -t Cl -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Ar2Cl
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Ar -t Pr -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Ar2Pr
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Ar -t Rw -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Ar2Rw
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Cl -t Ar -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Cl2Ar
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Cl -t Pr -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Cl2Pr
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Cl -t Rw -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Cl2Rw
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Pr -t Ar -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Pr2Ar
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Pr -t Cl -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Pr2Cl
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Pr -t Rw -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Pr2Rw
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Rw -t Ar -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Rw2Ar
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Rw -t Cl -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Rw2Cl
CUDA_VISIBLE_DEVICES=0 python ila_bsp.py data/office-home -d OfficeHome -s Rw -t Pr -a resnet50 --epochs 30 --seed 0 --k 3 --mu 0.67 --samples-per-class 2 --log logs/ila_bsp/OfficeHome_Rw2Pr

# Offline digits built from PyPI packages (MNIST 5k, UCI, MNIST on photos, typeset digits, house numbers):
# benchmarks/offline_digits.py
