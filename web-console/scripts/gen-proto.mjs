// Generates the console's TypeScript types from the protocol contract in ../proto/
// (never edit src/proto/ by hand: run `npm run proto` after proto/ changes).
//
// Inputs: proto/ws/*.schema.json (JSON Schema 2020-12, one per frame direction) and the
// `components.schemas` of proto/openapi.json (OpenAPI 3.1 document whose schemas use the
// OpenAPI 3.0 dialect: `nullable`, single-value `enum`). Both describe the same Rust types, so
// they are merged into one set of definitions: the WebSocket schemas win for shared names, and
// the generator fails if a shared definition means something different in the two files.
//
// Output: src/proto/hotline.ts, written by json-schema-to-typescript, deterministic (sorted
// inputs, fixed banner) so a check can regenerate it and compare.

import { readFileSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { compile } from 'json-schema-to-typescript';

const here = dirname(fileURLToPath(import.meta.url));
const protoDir = resolve(process.env.HOTLINE_PROTO_DIR ?? join(here, '..', '..', 'proto'));
const outDir = join(here, '..', 'src', 'proto');
const checkOnly = process.argv.includes('--check');

const ANNOTATIONS = ['description', 'default', 'title', 'examples', 'deprecated', 'readOnly', 'writeOnly'];

/** Rewrites OpenAPI 3.0-isms and `$ref` siblings into plain JSON Schema the generator reads right. */
function normalise(node) {
  if (Array.isArray(node)) return node.map(normalise);
  if (node === null || typeof node !== 'object') return node;
  let out = {};
  for (const [k, v] of Object.entries(node)) out[k] = normalise(v);
  if (typeof out.$ref === 'string') {
    out.$ref = out.$ref.replace('#/components/schemas/', '#/$defs/');
  }
  // OpenAPI 3.0: {"nullable": true, "enum": [null]} is the null type.
  if (out.nullable === true && Array.isArray(out.enum) && out.enum.length === 1 && out.enum[0] === null) {
    const { nullable: _n, enum: _e, ...rest } = out;
    out = { ...rest, type: 'null' };
  }
  // OpenAPI 3.0: {"type": T, "nullable": true} is T or null.
  if (out.nullable === true && typeof out.type === 'string') {
    const { nullable: _n, ...rest } = out;
    out = { ...rest, type: [out.type, 'null'] };
  }
  delete out.nullable;
  // A one-value enum is a const.
  if (Array.isArray(out.enum) && out.enum.length === 1 && out.enum[0] !== null) {
    const { enum: e, ...rest } = out;
    out = { ...rest, const: e[0] };
  }
  // JSON Schema 2020-12 allows keywords beside `$ref` (they apply too); the generator drops
  // them, so spell it as allOf. The OpenAPI dialect writes the same thing as allOf + siblings.
  // Annotations (description, default…) stay where they are.
  if (typeof out.$ref === 'string' || Array.isArray(out.allOf)) {
    const { $ref, allOf, ...rest } = out;
    const annotations = {};
    const assertions = {};
    for (const [k, v] of Object.entries(rest)) {
      (ANNOTATIONS.includes(k) ? annotations : assertions)[k] = v;
    }
    if (Object.keys(assertions).length > 0) {
      const parts = [...(allOf ?? []), ...($ref ? [{ $ref }] : [])];
      out = { ...annotations, allOf: [...parts, assertions] };
    }
  }
  return out;
}

/** What a definition means for types: descriptions, defaults and formats aside, and `required`
 * too: the OpenAPI schemas are generated "for serialization" (an `Option` the server always sends
 * as null is required there) while the WebSocket ones leave it optional. Same values either way. */
function meaning(node) {
  if (Array.isArray(node)) return node.map(meaning);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (['description', 'default', 'format', 'minimum', 'maximum', 'title', 'required'].includes(k)) continue;
    out[k] = meaning(v);
  }
  return out;
}

const defs = {};
const roots = [];
const wsDir = join(protoDir, 'ws');
for (const file of readdirSync(wsDir)
  .filter((f) => f.endsWith('.schema.json'))
  .sort()) {
  const schema = normalise(JSON.parse(readFileSync(join(wsDir, file), 'utf8')));
  const { $schema: _s, $defs = {}, title, ...root } = schema;
  if (!title) throw new Error(`${file}: no title`);
  for (const [name, def] of Object.entries($defs)) {
    if (defs[name] && !isDeepStrictEqual(meaning(defs[name]), meaning(def))) {
      throw new Error(`${file}: definition ${name} differs from another ws schema`);
    }
    defs[name] ??= def;
  }
  defs[title] = { title, ...root };
  roots.push(title);
}

const openapi = JSON.parse(readFileSync(join(protoDir, 'openapi.json'), 'utf8'));
const components = normalise(openapi.components?.schemas ?? {});
for (const name of Object.keys(components).sort()) {
  const def = components[name];
  if (defs[name]) {
    if (!isDeepStrictEqual(meaning(defs[name]), meaning({ ...def, title: name }))) {
      throw new Error(`openapi.json: ${name} differs from its WebSocket schema`);
    }
    continue;
  }
  defs[name] = def;
}

const sortedDefs = Object.fromEntries(
  Object.keys(defs)
    .sort()
    .map((k) => [k, defs[k]]),
);
// The generator declares unreferenced definitions (the HTTP bodies) only for an object root,
// so the root is an object naming the frame type of each direction.
const schema = {
  title: 'Protocol',
  description: 'The frame types of each WebSocket direction; every other type is declared below.',
  type: 'object',
  properties: Object.fromEntries(roots.map((r) => [r, { $ref: `#/$defs/${r}` }])),
  required: roots,
  additionalProperties: false,
  $defs: sortedDefs,
};

const banner = `/* Generated by \`npm run proto\` (scripts/gen-proto.mjs) from proto/ws/*.schema.json and
 * proto/openapi.json (protocol version ${openapi.info?.version ?? '?'}). Do not edit: change the Rust
 * types, run \`hotline proto\`, then \`npm run proto\`. */`;

let ts = await compile(schema, 'Protocol', {
  bannerComment: banner,
  additionalProperties: false,
  unreachableDefinitions: true,
  strictIndexSignatures: true,
  format: true,
  style: { singleQuote: true, printWidth: 100 },
});
// Drop the generator's "referenced by `Protocol`'s JSON-Schema via the definition X" notes.
const note = 'This interface was referenced by `Protocol`\'s JSON-Schema\n \\* via the `definition` "[^"]+"\\.';
ts = ts
  .replace(new RegExp(`/\\*\\*\\n \\* ${note}\\n \\*/\\n`, 'g'), '')
  .replace(new RegExp(`\\n \\*\\n \\* ${note}`, 'g'), '');
ts += `\n/** The protocol version these types were generated from (sent in every \`hello\`). */\nexport const PROTOCOL_VERSION = ${Number(openapi.info?.version ?? 0)};\n`;

const outFile = join(outDir, 'hotline.ts');
if (checkOnly) {
  let current = '';
  try {
    current = readFileSync(outFile, 'utf8');
  } catch {}
  if (current !== ts) {
    console.error('src/proto/hotline.ts is out of date: run `npm run proto`');
    process.exit(1);
  }
  console.log('src/proto/hotline.ts is current');
} else {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(outFile, ts);
  console.log(`wrote ${outFile} (${Object.keys(sortedDefs).length} definitions)`);
}
