import type { parseArgs } from 'node:util';
import { CliUsageError } from './cli-usage.error';

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

/**
 * Refuses an option with a value given more than once: `parseArgs` would keep the last one without a word, so a
 * second `--project` would create the key in a project other than the one the operator may have meant. (A flag
 * such as `--from-start` twice says the same thing twice.)
 */
export function refuseRepeatedOptions(tokens: Token[]): void {
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    if (seen.has(token.name)) throw new CliUsageError(`--${token.name} must be given once`);
    seen.add(token.name);
  }
}
