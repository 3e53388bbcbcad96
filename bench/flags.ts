// Command-line flags of the bench scripts: `--kebab-case value` pairs onto a defaults object whose keys are
// the camelCase names; a flag is a number where its default is one. An unknown flag is an error naming it.
export function parseFlags<T extends Record<string, string | number>>(defaults: T, argv: string[]): T {
  const out: Record<string, string | number> = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!(key in defaults)) throw new Error(`unknown option ${argv[i]} (known: ${Object.keys(defaults).join(', ')})`);
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`option ${argv[i]} needs a value`);
    if (typeof defaults[key] === 'number' && !Number.isFinite(Number(value)))
      throw new Error(`option ${argv[i]} needs a number, got "${value}"`);
    out[key] = typeof defaults[key] === 'number' ? Number(value) : value;
  }
  return out as T;
}
