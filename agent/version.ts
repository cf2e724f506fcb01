// eslint-disable-next-line @typescript-eslint/no-var-requires
export const AGENT_VERSION: string = (() => {
  try {
    // the package.json two or three levels up (agent/ in ts-jest, dist/agent/ when built)
    for (const p of ["../package.json", "../../package.json"]) {
      try {
        const pkg = require(p) as { name?: string; version?: string };
        if (pkg.name === "capacity-agent" && pkg.version) return pkg.version;
      } catch {
        /* try the next */
      }
    }
  } catch {
    /* fall through */
  }
  return "0.0.0";
})();
