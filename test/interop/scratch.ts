import { startTestServer } from "./support.js";
const server = await startTestServer((process.argv[2] ?? "http2") as "http2");
console.log(server.port);
setTimeout(() => { console.log(JSON.stringify(server.events)); void server.close(); }, 40000);
