import type { AgentConfig } from "../config/options";
import { CommandDriver, DevDriver, ZosDriver, type PowerDriver } from "./drivers";
import { parsePowerOptions } from "./options";
import { PowerService, type PowerServiceModules } from "./service";

export { PowerService } from "./service";
export { WakingBoard } from "./waking";

/** The driver the config names (power.driver). */
export function powerDriverFrom(c: AgentConfig["power"]): PowerDriver {
  if (c.driver === "zos") return new ZosDriver({ address: c.wol.address, port: c.wol.port });
  if (c.driver === "command") return new CommandDriver({ standby: c.standbyCommand, wake: c.wakeCommand });
  return new DevDriver();
}

/** The power component from the agent's configuration (only built when power.manage is on). */
export function powerServiceFrom(c: Pick<AgentConfig, "nodeId" | "farmId" | "power">, m: Omit<PowerServiceModules, "driver">): PowerService {
  return new PowerService({ nodeId: c.nodeId, farmId: c.farmId, policy: parsePowerOptions(c.power.policy), publicConfig: c.power.publicConfig, devBootMs: c.power.devBootSeconds * 1000 }, { ...m, driver: powerDriverFrom(c.power) });
}
