"""A PyTorch Dataset over files read through shoal. DataLoader workers are forked: each one
keeps using the filesystem made in the parent (libshoal re-makes its sockets in the child)."""
import numpy as np
import shoalfs
import torch
from torch.utils.data import DataLoader, Dataset


class ShoalFiles(Dataset):
    def __init__(self, prefix, seeds):
        self.fs = shoalfs.ShoalFileSystem(target_protocol="s3", seeds=seeds)
        self.paths = self.fs.find(prefix)
        self.sizes = {p: self.fs.size(p) for p in self.paths}

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        sample = np.empty(self.sizes[path], dtype=np.uint8)
        with self.fs.open(path) as f:
            f.readinto(sample)  # straight into the array, no copy
        return torch.from_numpy(sample)


loader = DataLoader(ShoalFiles("bucket/train", "127.0.0.1:7070"), batch_size=None,
                    num_workers=4, multiprocessing_context="fork")
for sample in loader:
    pass  # train
