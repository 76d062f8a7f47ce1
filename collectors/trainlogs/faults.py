"""Fatal signatures every framework prints the same way: collective timeouts (NCCL, HCCL), CUDA and NPU
runtime errors, out-of-memory, and GPU Xid events echoed into the job's log."""

from collectors.trainlogs.rules import rule

RULES = (
    rule("fatal", r"Watchdog caught collective operation|Some NCCL operations have failed or timed out|NCCL (?:communicator was aborted|error)"
                  r"|ncclSystemError|ncclInternalError|ProcessGroupNCCL.*Timeout|ProcessGroupNCCL watchdog hang", "nccl"),
    rule("fatal", r"HCCL[^\n]{0,40}(?:timeout|Timeout|error)|EI000[0-9]|notify wait timeout|HCCL_BLOCKING_WAIT", "hccl"),
    rule("fatal", r"EE1002|EH9999|EZ9999|aclrtSynchronize\w* failed|NPU function error|\b107020\b", "npu"),
    rule("fatal", r"CUDA out of memory|OutOfMemoryError|NPU out of memory", "oom"),
    rule("fatal", r"CUDA error: |uncorrectable ECC error encountered|unspecified launch failure", "cuda"),
    rule("fatal", r"\bXid \(PCI:[^)]*\): \d+|fallen off the bus", "xid"),
    rule("fatal", r"Unexpected bus error encountered in worker", "shm"),
    rule("fatal", r"slurmstepd: error: \*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT", "slurm"),
)
