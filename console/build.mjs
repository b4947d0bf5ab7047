// Bundles the console (src/main.ts and src/console.css) into the server package, where runctl serves
// it from /console/assets/. Run by `make generate`; the output is committed and `make check-generated`
// fails when it is stale, so the same sources and lock file always give the same bytes.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = here('../server/runctl_server/http/console_assets/');

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await esbuild.build({
  entryPoints: { console: here('src/main.ts') },
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  outdir: out,
  logLevel: 'warning',
});
await esbuild.build({
  entryPoints: { console: here('src/console.css') },
  bundle: true,
  minify: true,
  outdir: out,
  logLevel: 'warning',
});
await copyFile(here('src/favicon.svg'), `${out}favicon.svg`);
