/** The status every new order starts in. */
export const ORDER_CREATED = "created";

/** An order as stored. */
export interface Order {
  readonly id: string;
  readonly userId: string;
  readonly status: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}
