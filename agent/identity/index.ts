export * from "./keys";
export * from "./domains";
export * from "./errors";
export * from "./envelope";
