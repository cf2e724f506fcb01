import type { Command } from "../framework";

/**
 * Every command of the CLI, loaded only when it runs: the CLI starts by requiring this index and
 * the one command asked for (not all of them and what they import), so `--help` and client
 * commands start fast. Add a command: one file in commands/, one line here.
 */
export interface CommandEntry {
  name: string;
  /** one line for the usage text */
  summary: string;
  load(): Command;
}

export const COMMANDS: CommandEntry[] = [
  { name: "run", summary: "run the agent (the daemon)", load: () => (require("./run") as typeof import("./run")).runCommand },
  { name: "hardware", summary: "show the detected hardware: total, reserved and allocatable capacity, disks, GPUs", load: () => (require("./hardware") as typeof import("./hardware")).hardwareCommand },
  { name: "keys", summary: "create a key pair (node or twin)", load: () => (require("./keys") as typeof import("./keys")).keysCommand },
  { name: "deploy", summary: "sign a deployment file and send it to a node", load: () => (require("./deploy") as typeof import("./deploy")).deployCommand },
  { name: "delete", summary: "delete a deployment from a node (owner only)", load: () => (require("./delete") as typeof import("./delete")).deleteCommand },
  { name: "status", summary: "show a node's capacity and deployments", load: () => (require("./status") as typeof import("./status")).statusCommand },
  { name: "decisions", summary: "show a node's recent admission decisions (accepted and refused, with codes)", load: () => (require("./decisions") as typeof import("./decisions")).decisionsCommand },
  { name: "registry", summary: "bind a twin or node id to a key: in a JSON registry file, or a twin or farm on the chain", load: () => (require("./registry") as typeof import("./registry")).registryCommand },
  { name: "find", summary: "find nodes with room for a request (scatter-gather over NATS, signed answers)", load: () => (require("./find") as typeof import("./find")).findCommand },
  { name: "peers", summary: "show the capacity view a node holds of its peers (from gossip)", load: () => (require("./peers") as typeof import("./peers")).peersCommand },
  { name: "proofs", summary: "list, show, verify and audit the usage proofs the chain holds for a node", load: () => (require("./proofs") as typeof import("./proofs")).proofsCommand },
  { name: "dashboard", summary: "serve a live web page of a farm's nodes from the signed gossip (capacity, power, heartbeats, proofs)", load: () => (require("./dashboard") as typeof import("./dashboard")).dashboardCommand },
  { name: "bills", summary: "list, show and verify a twin's bills (charged from usage proofs)", load: () => (require("./bills") as typeof import("./bills")).billsCommand },
  { name: "balance", summary: "show a twin's balance on the chain", load: () => (require("./balance") as typeof import("./balance")).balanceCommand },
  { name: "chain", summary: "run the chain stand-in (registry and usage proofs, as tfchain would keep them)", load: () => (require("./chain") as typeof import("./chain")).chainCommand },
  { name: "twin", summary: "register the key's twin on tfchain (once)", load: () => (require("./twin") as typeof import("./twin")).twinCommand },
  { name: "farm", summary: "create a farm on tfchain for the key's twin", load: () => (require("./farm") as typeof import("./farm")).farmCommand },
  { name: "chain-info", summary: "what tfchain holds for a key: twin, farm, node", load: () => (require("./chain-info") as typeof import("./chain-info")).chainInfoCommand },
  { name: "verifier", summary: "follow tfchain and judge the usage proofs in its remarks (what a validator or pallet would run)", load: () => (require("./verifier") as typeof import("./verifier")).verifierCommand },
  { name: "power", summary: "power management: a farm's power status, put a node to standby or wake it", load: () => (require("./power") as typeof import("./power")).powerCommand },
];
