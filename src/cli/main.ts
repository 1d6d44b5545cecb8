#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=10
// The V8 settings above keep a server under heavy load within 100 MB of RSS
// for a few per cent of throughput (README, "Memory and V8's heap"). The
// semi-space size can only be set as the process starts, hence the shebang.
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
