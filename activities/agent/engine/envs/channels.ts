// Message channels shared by the environments. A message is a token from a small vocabulary.
//   direct:    addressed to one agent; only that agent receives it.
//   broadcast: every other agent receives it.
// A protocol not enabled in the config has its actions masked, so the policy cannot use it.
import type { Protocol } from './types';

export interface Message {
  from: number;
  /** Recipient slot, or -1 for broadcast. */
  to: number;
  token: number;
}

/** Inbox features an agent observes: token one-hot, "something arrived", "it came by direct message". */
export const inboxSize = (vocab: number): number => vocab + 2;

/**
 * Message actions occupy [base, base + vocab*(1+numAgents)): first the broadcast tokens, then for each
 * recipient slot r the direct tokens to r. The layout does not depend on which protocols are enabled,
 * so an action index means the same thing in every configuration.
 */
export class MessageChannels {
  readonly actionCount: number;

  constructor(
    readonly numAgents: number,
    readonly vocab: number,
    readonly protocols: readonly Protocol[],
    readonly base: number,
  ) {
    this.actionCount = vocab * (1 + numAgents);
  }

  /** The message an action sends, or null if the action is not a message. */
  decode(sender: number, action: number): Message | null {
    const k = action - this.base;
    if (k < 0 || k >= this.actionCount) return null;
    if (k < this.vocab) return { from: sender, to: -1, token: k };
    const to = Math.floor((k - this.vocab) / this.vocab);
    return { from: sender, to, token: (k - this.vocab) % this.vocab };
  }

  /** Mark the message actions `sender` may use (enabled protocols; never a direct message to itself). */
  markAllowed(sender: number, out: Float32Array, offset: number): void {
    if (this.protocols.includes('broadcast')) for (let v = 0; v < this.vocab; v++) out[offset + this.base + v] = 1;
    if (this.protocols.includes('direct')) {
      for (let r = 0; r < this.numAgents; r++) {
        if (r === sender) continue;
        for (let v = 0; v < this.vocab; v++) out[offset + this.base + this.vocab * (1 + r) + v] = 1;
      }
    }
  }

  /** Whether `agent` receives `msg` (the channel semantics). */
  receives(msg: Message, agent: number): boolean {
    return agent !== msg.from && (msg.to === -1 || msg.to === agent);
  }

  /** Write `agent`'s inbox features (inboxSize floats) for the message in flight, if it receives it. */
  writeInbox(msg: Message | null, agent: number, out: Float32Array, at: number): void {
    if (!msg || !this.receives(msg, agent)) return;
    out[at + msg.token] = 1;
    out[at + this.vocab] = 1;
    out[at + this.vocab + 1] = msg.to === -1 ? 0 : 1;
  }

  labels(): string[] {
    const out: string[] = [];
    for (let v = 0; v < this.vocab; v++) out.push(`broadcast token ${v}`);
    for (let r = 0; r < this.numAgents; r++) for (let v = 0; v < this.vocab; v++) out.push(`direct to agent ${r}: token ${v}`);
    return out;
  }
}
