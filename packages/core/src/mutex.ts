/**
 * Serialises async sections. Serial-mode simulations share one model between many virtual
 * learners; training yields to the event loop between batches, so without this two learners
 * would interleave batches on the same weights.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async runExclusive<T>(section: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await section();
    } finally {
      release();
    }
  }
}
