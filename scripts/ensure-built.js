#!/usr/bin/env node
// Used by `npm start` and `npm test`: install dependencies when missing and build when the sources are newer
// than dist/, so the quickstart's one command works on a fresh clone.
"use strict";
const { execSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const run = (cmd) => execSync(cmd, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });

if (!fs.existsSync(path.join(root, "node_modules", ".package-lock.json"))) {
  process.stderr.write("capacity-agent: installing dependencies (npm ci)...\n");
  run("npm ci --no-audit --no-fund");
}

function newest(dir) {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith(".ts")) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}

const out = path.join(root, "dist", "agent", "cli", "main.js");
if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < newest(path.join(root, "agent"))) {
  process.stderr.write("capacity-agent: building (tsc)...\n");
  run("npx tsc -p tsconfig.json");
}
