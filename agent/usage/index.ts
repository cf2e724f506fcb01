export * from "./meter";
export * from "./outbox";
export * from "./audit";
export * from "./service";
export * from "./uptime";
