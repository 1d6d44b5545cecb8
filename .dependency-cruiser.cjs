/**
 * The layer rules of docs/architecture.md, enforced: `npm run check:layers`.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    { name: "no-cycles", severity: "error", comment: "Import cycles hide the layering.", from: {}, to: { circular: true } },
    {
      name: "gen-is-generated-only",
      severity: "error",
      comment: "Generated code depends on nothing hand-written.",
      from: { path: "^src/gen/" },
      to: { path: "^src/(?!gen/)" },
    },
    {
      name: "toolkit-knows-no-domain",
      severity: "error",
      comment: "The toolkit is reusable: no users, orders, stores, app wiring or CLI.",
      from: { path: "^src/toolkit/" },
      to: { path: "^src/(services|storage|app|cli)/|^src/gen/service/" },
    },
    {
      name: "domain-is-pure",
      severity: "error",
      comment: "Domain code knows nothing of gRPC, generated messages, SQL drivers or wiring.",
      from: { path: "^src/services/[^/]+/domain/" },
      to: { path: "^src/(toolkit|gen|storage|app|cli)/|^src/services/[^/]+/(store|transport)/|^node_modules/" },
    },
    {
      name: "stores-know-no-transport",
      severity: "error",
      comment: "A store implements its domain's port with a database; it knows nothing of gRPC.",
      from: { path: "^src/services/[^/]+/store/" },
      to: { path: "^src/(toolkit|gen|app|cli)/|^src/services/[^/]+/transport/|^node_modules/@grpc/" },
    },
    {
      name: "services-are-separate",
      severity: "error",
      comment: "A service talks to another only through its generated client, never by importing its code.",
      from: { path: "^src/services/(user|order)/" },
      to: { path: "^src/services/(user|order)/", pathNot: "^src/services/$1/" },
    },
    {
      name: "storage-is-generic",
      severity: "error",
      comment: "Database plumbing serves every service and knows none of them.",
      from: { path: "^src/storage/" },
      to: { path: "^src/(services|toolkit|app|cli|gen)/" },
    },
    {
      name: "only-cli-uses-app-entry",
      severity: "error",
      comment: "Nothing below the entry point reaches up into the CLI.",
      from: { path: "^src/(?!cli/)" },
      to: { path: "^src/cli/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
