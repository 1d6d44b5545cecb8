#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=10
// The V8 settings above keep a server under heavy load within 100 MB of RSS,
// at a throughput cost measured in docs/benchmarks.md (README, "Memory and
// V8's heap"). The semi-space size can only be set as the process starts,
// hence the shebang; the bench reads the flags from this line.
import { Command } from "commander";
import { createRequire } from "node:module";
import { addCallCommand } from "./call-command.js";
import { addCertsCommand } from "./certs-command.js";
import { addHealthCommand } from "./health-command.js";
import { addServeCommand } from "./serve-command.js";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

const program = new Command()
  .name("switchyard")
  .description("UserService and OrderService over gRPC")
  .version(version)
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

addServeCommand(program);
addCallCommand(program);
addHealthCommand(program);
addCertsCommand(program);

await program.parseAsync();
