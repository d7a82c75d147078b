/**
 * Undo / redo as a stack of whole states, one stack per image: every action replaces the state with a new value
 * (instances are immutable; an edit copies only the mask it changes), so undo restores exactly what was there.
 * The oldest states go beyond `limit` undo steps (each may hold an image-size mask: memory stays bounded).
 */
export class History<S> {
  #past: S[] = [];
  #future: S[] = [];
  #current: S;

  readonly limit: number;

  constructor(initial: S, limit = 100) {
    if (!(Number.isInteger(limit) && limit >= 1))
      throw new Error(`undo limit must be a positive integer, got ${limit}`);
    this.#current = initial;
    this.limit = limit;
  }

  get current(): S {
    return this.#current;
  }

  get canUndo(): boolean {
    return this.#past.length > 0;
  }

  get canRedo(): boolean {
    return this.#future.length > 0;
  }

  /** Makes `next` the current state; the redo branch is dropped. */
  push(next: S): S {
    this.#past.push(this.#current);
    if (this.#past.length > this.limit) this.#past.shift();
    this.#future = [];
    this.#current = next;
    return next;
  }

  /** The previous state (now current), or undefined when there is none. */
  undo(): S | undefined {
    const prev = this.#past.pop();
    if (prev === undefined) return undefined;
    this.#future.push(this.#current);
    this.#current = prev;
    return prev;
  }

  redo(): S | undefined {
    const next = this.#future.pop();
    if (next === undefined) return undefined;
    this.#past.push(this.#current);
    this.#current = next;
    return next;
  }
}
