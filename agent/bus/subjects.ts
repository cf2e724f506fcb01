/** NATS subjects (DESIGN.md). The prefix is configurable; default "tfgrid.v1". */
export class Subjects {
  constructor(readonly prefix = "tfgrid.v1") {}
  nodeDeploy(node: number): string {
    return `${this.prefix}.node.${node}.deploy`;
  }
  nodeDelete(node: number): string {
    return `${this.prefix}.node.${node}.delete`;
  }
  nodeGet(node: number): string {
    return `${this.prefix}.node.${node}.get`;
  }
  nodeStatus(node: number): string {
    return `${this.prefix}.node.${node}.status`;
  }
  /** the node's recent admission decisions (an in-memory ring) */
  nodeDecisions(node: number): string {
    return `${this.prefix}.node.${node}.decisions`;
  }
  /** audit of usage records of one proof: tfgrid.v1.node.<node>.usage.<sequence> ("*": every proof) */
  nodeUsage(node: number, sequence: number | "*"): string {
    return `${this.prefix}.node.${node}.usage.${sequence}`;
  }
  /** the view agent N holds (capacity-agent peers) */
  nodePeers(node: number): string {
    return `${this.prefix}.node.${node}.peers`;
  }
  /** power intents and objections of a farm's nodes (docs/power.md) */
  power(farm: number): string {
    return `${this.prefix}.power.${farm}`;
  }
  /** wake and standby requests to node N */
  nodePower(node: number): string {
    return `${this.prefix}.node.${node}.power`;
  }
  capacity(farm: number | "*", node: number | "*"): string {
    return `${this.prefix}.capacity.${farm}.${node}`;
  }
  capacitySync(farm: number | "*"): string {
    return `${this.prefix}.capacity.sync.${farm}`;
  }
  capacityFind(): string {
    return `${this.prefix}.capacity.find`;
  }
  chain(call: string): string {
    return `${this.prefix}.chain.${call}`;
  }
}
