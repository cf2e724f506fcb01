/**
 * The import graph of agent/ (issue 9): one direction of imports, cli -> agent wiring (agent.ts)
 * -> modules -> pure cores; no cycles; the chain's authority (agent/authority: the stand-in and the
 * verifier of proofs on tfchain) loaded only by the commands that run it, never by the agent.
 *
 * Imports are read with TypeScript's own pre-processor (ts.preProcessFile): `import ... from`,
 * `export ... from`, `import "x"`, `import("x")` and `require("x")` anywhere in a file (the lazy
 * loads of the CLI and the agent), not in comments or strings. Type-only imports count too: a type
 * cycle is still a knot for the reader. Every check is a pure function over a graph, tried first
 * on small graphs that break it (below), then on the real tree.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";

const ROOT = path.resolve(__dirname, "../..");

/** file (relative to the repository, "agent/x/y.ts") -> the agent files it imports, and the packages. */
export interface ImportGraph {
  files: Map<string, { local: string[]; packages: string[] }>;
}

/** The module specifiers a TypeScript source imports, requires or loads lazily. */
export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

function resolveLocal(from: string, spec: string): string | null {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const candidate of [`${base}.ts`, `${base}/index.ts`, base]) {
    if (candidate.endsWith(".ts") && fs.existsSync(path.join(ROOT, candidate))) return candidate;
  }
  return null;
}

/** The import graph of every .ts file under `dir` (repository-relative, posix paths). */
export function readGraph(dir: string): ImportGraph {
  const files = new Map<string, { local: string[]; packages: string[] }>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true })) {
      const rel = path.posix.join(d, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
        const local = new Set<string>();
        const packages = new Set<string>();
        for (const spec of importsOf(fs.readFileSync(path.join(ROOT, rel), "utf8"))) {
          if (spec.startsWith(".")) {
            const target = resolveLocal(rel, spec);
            if (target === null) throw new Error(`${rel}: cannot resolve ${spec}`);
            local.add(target);
          } else packages.add(spec);
        }
        files.set(rel, { local: [...local].sort(), packages: [...packages].sort() });
      }
    }
  };
  walk(dir);
  return { files };
}

/** Every import that matches `bad(from, to)`, as "from -> to". */
export function edgesWhere(g: ImportGraph, bad: (from: string, to: string) => boolean): string[] {
  const out: string[] = [];
  for (const [from, { local }] of g.files) for (const to of local) if (bad(from, to)) out.push(`${from} -> ${to}`);
  return out.sort();
}

/** Files reachable from `start` by imports (start included). */
export function reachable(g: ImportGraph, start: string): Set<string> {
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const to of g.files.get(f)?.local ?? []) todo.push(to);
  }
  return seen;
}

/** The import cycles: one cycle (a path back to its start) per strongly connected component of more than one file, or a file importing itself. */
export function cyclesOf(g: ImportGraph): string[][] {
  // Tarjan's strongly connected components, iterative (no recursion limit on deep graphs)
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  for (const root of g.files.keys()) {
    if (index.has(root)) continue;
    const work: Array<{ v: string; i: number }> = [{ v: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const edges = g.files.get(top.v)?.local ?? [];
      if (top.i < edges.length) {
        const w = edges[top.i++];
        if (!g.files.has(w)) continue;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const c: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          c.push(w);
        } while (w !== top.v);
        if (c.length > 1 || (g.files.get(top.v)?.local ?? []).includes(top.v)) components.push(c);
      }
    }
  }
  // one concrete cycle per component: breadth-first from its first file (sorted) back to it
  return components.map((c) => {
    const members = new Set(c);
    const start = [...c].sort()[0];
    const prev = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0) {
      const v = queue.shift()!;
      for (const w of g.files.get(v)?.local ?? []) {
        if (!members.has(w)) continue;
        if (w === start) {
          const cycle = [start];
          for (let x: string | undefined = v; x !== undefined && x !== start; x = prev.get(x)) cycle.splice(1, 0, x);
          return [...cycle, start];
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    return [...c, c[0]];
  });
}

// ---- the rules

const AUTHORITY = "agent/authority/";
const CLI = "agent/cli/";
const WIRING = "agent/agent.ts";
/** The commands that run the authority: the chain stand-in and the verifier of tfchain's remarks. */
const AUTHORITY_COMMANDS = ["agent/cli/commands/chain.ts", "agent/cli/commands/verifier.ts"];

/** Pure cores (DESIGN.md "pure decision functions"): no I/O of their own, no module shell below them. */
export const PURE_CORES = [
  "agent/capacity/units.ts",
  "agent/capacity/size.ts",
  "agent/capacity/model.ts",
  "agent/admission/spec.ts",
  "agent/admission/admit.ts",
  "agent/proofs/proof.ts",
  "agent/proofs/merkle.ts",
  "agent/billing/pricing.ts",
  "agent/billing/twins.ts",
  "agent/usage/meter.ts",
  "agent/power/policy.ts",
  "agent/power/agreement.ts",
  "agent/authority/rules.ts",
  "agent/authority/billing.ts",
  "agent/bus/permissions.ts",
];
/** What a pure core may import besides other pure cores: the error base class and result shape, integer ranges, encodings and the generated wire types, keys and signatures, options and errors, record types (the registry's, the chain's). */
const PURE_VOCABULARY = /^agent\/(errors|result|util\/ints|wire\/(codec|generated)|identity\/(domains|envelope|keys|errors)|registry\/types|chain\/backend|[a-z]+\/(options|errors))\.ts$/;
/** Packages that do I/O (files, network, processes, logs, metrics): never imported by a pure core. */
const IO_PACKAGES = /^(node:(fs|net|http|https|http2|child_process|os|dgram|worker_threads|cluster|readline)|@nats-io\/|better-sqlite3$|pino|prom-client$|systeminformation$|@polkadot\/api)/;

export function authorityImportedOutside(g: ImportGraph): string[] {
  return edgesWhere(g, (from, to) => to.startsWith(AUTHORITY) && !from.startsWith(AUTHORITY) && !AUTHORITY_COMMANDS.includes(from));
}

export function authorityLoadedBy(g: ImportGraph, start: string): string[] {
  return [...reachable(g, start)].filter((f) => f.startsWith(AUTHORITY)).sort();
}

export function cliImportedOutside(g: ImportGraph): string[] {
  return edgesWhere(g, (from, to) => to.startsWith(CLI) && !from.startsWith(CLI));
}

export function wiringImportedOutsideCli(g: ImportGraph): string[] {
  return edgesWhere(g, (from, to) => to === WIRING && !from.startsWith(CLI));
}

export function pureCoreViolations(g: ImportGraph, cores: readonly string[]): string[] {
  const pure = new Set(cores);
  const out = edgesWhere(g, (from, to) => pure.has(from) && !pure.has(to) && !PURE_VOCABULARY.test(to));
  for (const core of cores) for (const p of g.files.get(core)?.packages ?? []) if (IO_PACKAGES.test(p)) out.push(`${core} -> ${p}`);
  return out.sort();
}

// ---- the checks, first on graphs made to break them

function graph(edges: Record<string, string[]>, packages: Record<string, string[]> = {}): ImportGraph {
  const files = new Map<string, { local: string[]; packages: string[] }>();
  for (const [f, local] of Object.entries(edges)) files.set(f, { local, packages: packages[f] ?? [] });
  return { files };
}

describe("the checks catch what they are for (made-up graphs)", () => {
  test("the parser sees static, type-only, re-exported, side-effect, dynamic and lazy imports, not comments or strings", () => {
    const src = [
      `import { a } from "./a";`,
      `import type { B } from "../b";`,
      `export { c } from "./c";`,
      `import "./side";`,
      `// import { no } from "./commented";`,
      `const s = "require('./in-a-string')";`,
      `function lazy() { return (require("./lazy") as typeof import("./typed")).x; }`,
      `async function dyn() { return import("./dynamic"); }`,
    ].join("\n");
    expect(importsOf(src).sort()).toEqual(["../b", "./a", "./c", "./dynamic", "./lazy", "./side", "./typed"]);
  });

  test("a cycle is found and reported as a path back to its start", () => {
    const g = graph({ "agent/a.ts": ["agent/b.ts"], "agent/b.ts": ["agent/c.ts"], "agent/c.ts": ["agent/a.ts", "agent/d.ts"], "agent/d.ts": [] });
    expect(cyclesOf(g)).toEqual([["agent/a.ts", "agent/b.ts", "agent/c.ts", "agent/a.ts"]]);
    expect(cyclesOf(graph({ "agent/a.ts": ["agent/a.ts"] }))).toEqual([["agent/a.ts", "agent/a.ts"]]);
    expect(cyclesOf(graph({ "agent/a.ts": ["agent/b.ts"], "agent/b.ts": [] }))).toEqual([]);
  });

  test("two separate cycles are two reports", () => {
    const g = graph({ "agent/a.ts": ["agent/b.ts"], "agent/b.ts": ["agent/a.ts"], "agent/x.ts": ["agent/y.ts"], "agent/y.ts": ["agent/x.ts", "agent/a.ts"] });
    expect(cyclesOf(g).map((c) => c[0]).sort()).toEqual(["agent/a.ts", "agent/x.ts"]);
  });

  test("the authority imported by a module, and loaded through it by the agent, is caught", () => {
    const g = graph({
      "agent/agent.ts": ["agent/usage/service.ts"],
      "agent/usage/service.ts": ["agent/authority/rules.ts"],
      "agent/authority/rules.ts": [],
      "agent/cli/commands/chain.ts": ["agent/authority/server.ts"],
      "agent/authority/server.ts": ["agent/authority/rules.ts", "agent/chain/wire.ts"],
      "agent/chain/wire.ts": [],
    });
    expect(authorityImportedOutside(g)).toEqual(["agent/usage/service.ts -> agent/authority/rules.ts"]);
    expect(authorityLoadedBy(g, "agent/agent.ts")).toEqual(["agent/authority/rules.ts"]);
  });

  test("a module importing the CLI or the agent's wiring is caught; the CLI importing them is not", () => {
    const g = graph({
      "agent/cli/commands/run.ts": ["agent/agent.ts", "agent/cli/framework.ts"],
      "agent/agent.ts": [],
      "agent/cli/framework.ts": [],
      "agent/dashboard/main.ts": ["agent/cli/framework.ts"],
      "agent/gossip/gossip.ts": ["agent/agent.ts"],
    });
    expect(cliImportedOutside(g)).toEqual(["agent/dashboard/main.ts -> agent/cli/framework.ts"]);
    expect(wiringImportedOutsideCli(g)).toEqual(["agent/gossip/gossip.ts -> agent/agent.ts"]);
  });

  test("a pure core importing a shell or an I/O package is caught; vocabulary is allowed", () => {
    const g = graph(
      { "agent/capacity/model.ts": ["agent/capacity/units.ts", "agent/store/store.ts", "agent/capacity/options.ts"], "agent/capacity/units.ts": [] },
      { "agent/capacity/model.ts": ["node:fs", "node:crypto"] },
    );
    expect(pureCoreViolations(g, ["agent/capacity/model.ts", "agent/capacity/units.ts"])).toEqual(["agent/capacity/model.ts -> agent/store/store.ts", "agent/capacity/model.ts -> node:fs"]);
  });
});

// ---- the real tree

describe("the import graph of agent/", () => {
  const g = readGraph("agent");

  test("it is read whole: every module, the lazy loads of the CLI and the agent included", () => {
    expect(g.files.size).toBeGreaterThan(100);
    expect(g.files.get("agent/cli/commands/index.ts")?.local).toEqual(expect.arrayContaining(["agent/cli/commands/run.ts", "agent/cli/commands/chain.ts"]));
    expect(g.files.get("agent/agent.ts")?.local).toContain("agent/tfchain/backend.ts"); // require()d when --chain-url is given
    expect(g.files.get("agent/cli/commands/chain.ts")?.local).toContain("agent/authority/server.ts");
    for (const core of PURE_CORES) expect(g.files.has(core)).toBe(true);
  });

  test("no cycles", () => {
    expect(cyclesOf(g).map((c) => c.join(" -> "))).toEqual([]);
  });

  test("only the authority itself and the commands that run it (chain, verifier) import agent/authority", () => {
    expect(authorityImportedOutside(g)).toEqual([]);
  });

  test("the agent and every other command never load the authority, not even lazily", () => {
    expect(authorityLoadedBy(g, WIRING)).toEqual([]);
    const commands = [...g.files.keys()].filter((f) => f.startsWith("agent/cli/commands/") && f !== "agent/cli/commands/index.ts" && !AUTHORITY_COMMANDS.includes(f));
    expect(commands.length).toBeGreaterThan(15);
    for (const c of commands) expect({ command: c, loads: authorityLoadedBy(g, c) }).toEqual({ command: c, loads: [] });
  });

  test("nothing under agent/ but the CLI imports agent/cli", () => {
    expect(cliImportedOutside(g)).toEqual([]);
  });

  test("nothing but the CLI imports the agent's wiring (agent.ts)", () => {
    expect(wiringImportedOutsideCli(g)).toEqual([]);
  });

  test("pure cores import only pure cores and shared vocabulary (encodings, keys, options, errors), and no I/O package", () => {
    expect(pureCoreViolations(g, PURE_CORES)).toEqual([]);
  });
});

describe("the README's Layout section", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("## Layout\n");
  const block = readme.slice(readme.indexOf("```\n", start) + 4, readme.indexOf("\n```", readme.indexOf("```\n", start) + 4));

  /** Folders of the tree a reader should find in the Layout: the top level and two levels of agent/, scripts/ and test/. */
  function folders(): string[] {
    const out: string[] = [];
    // what .gitignore leaves out (built output, dependencies, local data) is not part of the layout
    const ignored = new Set(["node_modules", "dist", "coverage", ".capacity-agent", "tmp", "test-artifacts", ".git"]);
    for (const top of fs.readdirSync(ROOT, { withFileTypes: true })) {
      if (!top.isDirectory() || ignored.has(top.name)) continue;
      out.push(top.name);
      if (!["agent", "scripts", "test"].includes(top.name)) continue;
      for (const sub of fs.readdirSync(path.join(ROOT, top.name), { withFileTypes: true })) {
        if (!sub.isDirectory()) continue;
        out.push(`${top.name}/${sub.name}`);
        for (const sub2 of fs.readdirSync(path.join(ROOT, top.name, sub.name), { withFileTypes: true })) if (sub2.isDirectory()) out.push(`${top.name}/${sub.name}/${sub2.name}`);
      }
    }
    return out.sort();
  }

  test("it is found", () => {
    expect(start).toBeGreaterThan(0);
    expect(block).toContain("agent/");
  });

  test("it names every folder of the tree", () => {
    const named = (folder: string): boolean => {
      const name = folder.split("/").pop()!;
      // a folder is named as "name/" (at its place in the indented tree) or, for the top level, as ".name/..."
      return new RegExp(`(^|[\\s(,])\\.?${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/`, "m").test(block);
    };
    expect(folders().filter((f) => !named(f))).toEqual([]);
  });

  test("every agent/ module it names exists", () => {
    const listed = [...block.matchAll(/^ {2}([a-z-]+)\/ /gm)].map((m) => m[1]);
    expect(listed.length).toBeGreaterThan(15);
    expect(listed.filter((d) => !fs.existsSync(path.join(ROOT, "agent", d)))).toEqual([]);
  });
});
