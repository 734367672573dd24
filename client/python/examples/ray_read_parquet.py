"""Ray Data reading Parquet through shoal (Ray is not installed here; this is the shape).

Ray strips the scheme before calling the filesystem ("bucket/train/..."), which shoalfs
accepts as well as "s3://bucket/train/...".
"""
import ray
import shoalfs

fs = shoalfs.ShoalFileSystem(target_protocol="s3", seeds="127.0.0.1:7070")
ds = ray.data.read_parquet("s3://bucket/train/", filesystem=fs)
for batch in ds.iter_batches(batch_size=1024):
    pass  # train
