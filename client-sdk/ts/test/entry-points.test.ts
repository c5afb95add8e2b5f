// What each entry point of package.json's "exports" pulls in: `@connectrpc/connect-node` (an optional peer
// dependency, installed by Node users only) must be reachable from `./node` alone, so that browsers and React
// Native, which import `.` and `./web`, never need it. Walks the import graph of src/ (type-only imports
// included, so the declarations stay clean too); tsc emits dist/ with the same imports
// (verbatimModuleSyntax), less the type-only ones.
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

import ts from "typescript";
import { describe, expect, it } from "vitest";

const sdk = resolve(import.meta.dirname, "..");
const manifest = JSON.parse(readFileSync(join(sdk, "package.json"), "utf8")) as {
  exports: Record<string, { default: string }>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};

/** Every package (bare specifier) imported by `entry` and the SDK modules it reaches, with one path to each. */
function packagesReachedFrom(entry: string): Map<string, string> {
  const packages = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (file: string, trail: string): void => {
    if (seen.has(file)) {
      return;
    }
    seen.add(file);
    const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    for (const { fileName: specifier } of importedFiles) {
      if (specifier.startsWith(".")) {
        const target = resolve(dirname(file), specifier.replace(/\.js$/, ".ts"));
        visit(target, `${trail} → ${relative(sdk, target)}`);
      } else if (!packages.has(specifier)) {
        packages.set(specifier, `${trail} → ${specifier}`);
      }
    }
  };
  const file = join(sdk, entry);
  visit(file, relative(sdk, file));
  return packages;
}

/** The source file behind an export of package.json (`./dist/web.js` is built from `src/web.ts`). */
function sourceOf(exported: string): string {
  const target = manifest.exports[exported]?.default;
  if (target === undefined) {
    throw new Error(`package.json exports no ${exported}`);
  }
  return target.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts");
}

describe("entry points", () => {
  it.each([".", "./web"])("%s never reaches @connectrpc/connect-node nor a Node built-in", (exported) => {
    const packages = packagesReachedFrom(sourceOf(exported));
    expect(packages.size).toBeGreaterThan(0);
    const nodeOnly = [...packages].filter(([name]) => name === "@connectrpc/connect-node" || name.startsWith("node:"));
    expect(nodeOnly.map(([, path]) => path)).toEqual([]);
  });

  it("./node reaches @connectrpc/connect-node", () => {
    expect(packagesReachedFrom(sourceOf("./node")).has("@connectrpc/connect-node")).toBe(true);
  });

  it("@connectrpc/connect-node is an optional peer dependency, not a dependency", () => {
    expect(manifest.dependencies?.["@connectrpc/connect-node"]).toBeUndefined();
    expect(manifest.peerDependencies?.["@connectrpc/connect-node"]).toBeDefined();
    expect(manifest.peerDependenciesMeta?.["@connectrpc/connect-node"]?.optional).toBe(true);
  });

  it("every package an entry point imports is declared", () => {
    const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
    for (const exported of Object.keys(manifest.exports)) {
      for (const [specifier, path] of packagesReachedFrom(sourceOf(exported))) {
        if (specifier.startsWith("node:")) {
          continue;
        }
        const name = specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");
        expect(declared.has(name), `${path}: ${name} is not in dependencies or peerDependencies`).toBe(true);
      }
    }
  });
});
