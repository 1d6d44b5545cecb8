/**
 * Preloaded (`node --import`) into a server by `npm run bench:alloc`: the
 * first SIGUSR2 starts V8's sampling heap profiler, counting the objects
 * that minor and major GCs have already collected too, so the profile holds
 * everything allocated, not only what survived; the second SIGUSR2 stops it
 * and writes the profile to `allocations-<pid>.json` in
 * $SWITCHYARD_ALLOC_DIR. Bytes allocated per call do not move with the
 * machine's load the way CPU time does, and GC time grows with them.
 */
import { renameSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import path from "node:path";

const outDir = process.env["SWITCHYARD_ALLOC_DIR"] ?? ".";
const session = new Session();
session.connect();
let sampling = false;

process.on("SIGUSR2", () => {
  if (!sampling) {
    sampling = true;
    session.post("HeapProfiler.enable", () =>
      session.post("HeapProfiler.startSampling", {
        samplingInterval: 256,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      }),
    );
    return;
  }
  sampling = false;
  session.post("HeapProfiler.stopSampling", (error, result) => {
    const file = path.join(outDir, `allocations-${process.pid}.json`);
    // Renamed into place, so the reader never sees half a file.
    writeFileSync(`${file}.partial`, error === null ? JSON.stringify(result.profile) : JSON.stringify({ error: error.message }));
    renameSync(`${file}.partial`, file);
  });
});
