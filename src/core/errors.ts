/**
 * The one error type segkit throws for bad input: it names the file (when there is one), says what is wrong and,
 * where it can, what to do. The CLI prints it as one line; everything else is a bug and keeps its stack.
 */
export class SegkitError extends Error {
  override readonly name = "SegkitError";
  readonly file: string | undefined;
  readonly hint: string | undefined;

  constructor(message: string, options: { file?: string; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.file = options.file;
    this.hint = options.hint;
  }

  /** `file: message (hint)`, the form the CLI prints. */
  describe(): string {
    const head = this.file ? `${this.file}: ${this.message}` : this.message;
    return this.hint ? `${head}. ${this.hint}` : head;
  }
}

/** The message of any thrown value, for reports that must not print a stack. */
export function errorMessage(err: unknown): string {
  if (err instanceof SegkitError) return err.describe();
  return err instanceof Error ? err.message : String(err);
}
