import { capacityOf } from "../../capacity/model";
import { formatBytes } from "../../capacity/size";
import { loadConfig } from "../../config/options";
import { silentLogger } from "../../log/logger";
import { EXIT_OK, JSON_OPTION, type Command } from "../framework";
import { unitsLine } from "../format";

export const hardwareCommand: Command = {
  name: "hardware",
  help: `usage: capacity-agent hardware [--json] [--config FILE]

Probes this machine (systeminformation, cgroup limits, /sys/block) and prints what the agent
would offer. JSON: {"total","reserved","allocatable","reservable","disks","gpus"}; units are cru,
mru, sru, hru, ipv4u, gpu with memory and storage in bytes.
  --json         print JSON
  --config FILE  apply a config file (disk class overrides, reserved capacity, public IPv4 count)`,
  options: { ...JSON_OPTION, config: { type: "string" } },
  async run({ values }, io) {
    const config = loadConfig({ config: values.config as string | undefined }, io.env);
    // systeminformation is loaded only when the probe runs (not for --help)
    const { SystemHardwareProbe, parseHardwareOptions } = require("../../hardware") as typeof import("../../hardware");
    const probe = new SystemHardwareProbe(parseHardwareOptions(config.hardware), { logger: silentLogger() });
    try {
      const report = await probe.probe();
      const cap = capacityOf(report.total, config.capacity);
      if (values.json) {
        io.out(JSON.stringify({ total: cap.total, reserved: cap.reserved, allocatable: cap.allocatable, reservable: cap.reservable, disks: report.disks, gpus: report.gpus }, null, 2));
      } else {
        io.out(
          [
            `total        ${unitsLine(cap.total)}`,
            `reserved     ${unitsLine(cap.reserved)}`,
            `allocatable  ${unitsLine(cap.allocatable)}`,
            `reservable   ${unitsLine(cap.reservable)}   (cpu overprovision x${config.capacity.overprovision.cru})`,
            `disks:`,
            ...(report.disks.length ? report.disks.map((d) => `  ${d.name.padEnd(10)} ${d.class.toUpperCase()} ${formatBytes(d.sizeBytes).padStart(10)}  (class from ${d.classSource}) ${d.model}`) : ["  none"]),
            `gpus:`,
            ...(report.gpus.length ? report.gpus.map((g) => `  ${g.id} ${g.vendor} ${g.model} ${formatBytes(g.memoryBytes)}`) : ["  none"]),
          ].join("\n"),
        );
      }
    } finally {
      await probe.close();
    }
    return EXIT_OK;
  },
};
