export * from "./store";
export * from "./errors";
export * from "./lock";
