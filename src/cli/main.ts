#!/usr/bin/env node
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
