// Second, independent oracle for the real-tokenizer fixtures: transformers.js's tokenizers
// (npm @lenml/tokenizers, a JavaScript port of HF tokenizers: JS String.prototype.normalize for
// NFC, JS Unicode regexes for the pre-tokenizer). Runs where npm works; HF tokenizers itself is
// tools/tokenizer_oracle.py (GPU machine).
//
//   mkdir /tmp/o && cd /tmp/o && npm install @lenml/tokenizers@3.7.2
//   NODE_PATH=/tmp/o/node_modules node tools/tokenizer_oracle_transformersjs.cjs \
//       DIR_WITH_tokenizer.json CASES.json OUT.json
//
// OUT.json: {"oracle", "cases": [{"label", "text", "ids", "decoded"}]} with ids encoded without
// special tokens added (pv tokenize --no-special adds none either; inline special tokens are
// still matched by both).
"use strict";
const fs = require("fs");
const path = require("path");
const { TokenizerLoader } = require("@lenml/tokenizers");

const [dir, casesPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: tokenizer_oracle_transformersjs.cjs DIR CASES.json OUT.json");
  process.exit(2);
}
const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
// The package's exports hide its package.json: read it next to the resolved entry point.
const entry = require.resolve("@lenml/tokenizers");
const version = JSON.parse(
  fs.readFileSync(path.join(path.dirname(entry), "..", "package.json"), "utf8")).version;
const cases = JSON.parse(fs.readFileSync(casesPath, "utf8")).cases;
const out = {
  oracle: `transformers.js tokenizers (npm @lenml/tokenizers ${version}), node ${process.version}`,
  cases: cases.map((c) => {
    const ids = tok.encode(c.text, { add_special_tokens: false });
    return { label: c.label, text: c.text, ids, decoded: tok.decode(ids) };
  }),
};
fs.writeFileSync(outPath, JSON.stringify(out, null, 1) + "\n");
console.error(`wrote ${out.cases.length} cases to ${outPath}`);
