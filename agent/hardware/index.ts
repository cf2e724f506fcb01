export type { Disk, DiskClass, Gpu, HardwareProbe, HardwareReport } from "./types";
export { HardwareError, type HardwareErrorCode, type HardwareErrorPayloads, type ProbeStep } from "./errors";
export { HARDWARE_DEFAULTS, parseHardwareOptions, type HardwareOptions } from "./options";
export {
  NO_CGROUP_LIMITS,
  cpusFromQuota,
  effectiveCru,
  effectiveMru,
  parseCfsQuota,
  parseCpuMax,
  parseMemoryLimitInBytes,
  parseMemoryMax,
  readCgroupLimits,
  type CgroupLimits,
} from "./cgroup";
export { classFromType, classifyDisks, diskExclusion, noSsdAdvice, storageUnits, type DiskExclusion, type DiskInputs } from "./disks";
export { GPU_WORKER_SOURCE, NOT_COMPUTE_GPU, WorkerGpuReader, gpusFromControllers, isNotComputeGpu, type GpuReader, type WorkerGpuReaderModules, type WorkerGpuReaderOptions } from "./gpu";
export { SYS_BLOCK, SystemHardwareProbe, type SystemHardwareProbeModules } from "./probe";
export { HardwareMonitor, hardwareChanged, hardwareSummary, type HardwareListener, type HardwareMonitorModules } from "./monitor";
