/**
 * authprobe benchmark against the cluster in KUBECONFIG (normally the test cluster: `npm run bench`).
 *
 *   npm run bench                 full mode
 *   npm run bench -- --quick      quick mode (about 25-30 minutes)
 *   npm run bench -- --quick --only=limit,cost   only some phases (limit, cost, scale, memory, missing,
 *                                                writes, idle, soak, heal)
 *   npm run bench -- --small      tiny sizes, for trying the bench itself out (figures meaningless)
 *
 * The operator under test runs as a host process from dist/ (so /proc gives its CPU and RSS), one
 * fresh process per phase. Every namespace this creates is named bench-*, and is deleted at the end,
 * also on failure. The heal phase rotates the cluster's service-account signing key
 * (test/cluster/rotate-sa-key.sh): it breaks every legacy token secret made before it, anywhere.
 *
 * Layout: options.ts (the command line and sizes), session.ts (one run: prepare, the phases in order,
 * cleanup, the report), phases/ (one module per phase), lib/ (the cluster, the operator process,
 * /proc, the counting proxy, statistics), report/ (targets, latest.json and latest.md).
 *
 * Runs on Node's type stripping, so the bench modules import each other by their `.ts` names
 * (bench/tsconfig.json allows it for the type check), and bench/ uses only node: modules and
 * @kubernetes/client-node (to read the kubeconfig), not src/ or test/support (their imports name `.js`
 * files that exist only after tsc). Nothing here prints a token.
 */
// The options come first: a usage error needs no kubeconfig (lib/apiserver.ts reads it when loaded).
const { parseOptions, usage } = await import('./options.ts');
const options = parseOptions(process.argv.slice(2));
if (options.unknown.length) {
  process.stderr.write(usage(options.unknown));
  process.exit(64);
}
if (options.render) {
  const { render } = await import('./report/files.ts');
  process.exitCode = render(options.resultsDir);
} else {
  const { runBench } = await import('./session.ts');
  process.exitCode = await runBench(options);
}
// open keep-alive sockets or timers must not keep the process alive
setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
