/** A mistake in how the CLI was called; printed without a stack trace. */
export class CliUsageError extends Error {}
