// "interactive": turn-based games that can only be won by exchanging messages.
// Every episode is ROUNDS rounds of two turns:
//   communicate: the round's sender (who alone holds the private information) may send one message
//                over an enabled channel (direct to one agent, or broadcast); everyone else waits.
//   act:         the other agents act on what they received; the round is scored.
// The sender is slot 0 every round under the hierarchical strategy (a fixed leader) and a random slot
// each round under the decentralized one (no leader: whoever holds the information must route it).
import type { Rng } from '../../../../common/rng';
import { MessageChannels, inboxSize, type Message } from './channels';
import {
  ACTION_COUNT,
  HEADER_SIZE,
  MAX_ENV_AGENTS,
  labelsArray,
  writeHeader,
  type EnvKind,
  type EnvSettings,
  type EnvSpec,
  type EnvVariant,
  type EpisodeOutcome,
  type MultiAgentEnv,
  type StepResult,
} from './types';

export const ROUNDS = 8;
const VOCAB = 4;
/** An episode succeeds when at least this many of its ROUNDS rounds are solved. */
export const ROUNDS_TO_SUCCEED = 6;

interface RoundScore {
  reward: number;
  solved: boolean;
  /** The round counts towards the coordination score (see each game's definition). */
  coordinated: boolean;
  /** The message reached the agent whose action decided the round. */
  deliveredToActor: boolean;
}

abstract class RoundGame implements MultiAgentEnv {
  abstract readonly spec: EnvSpec;
  protected readonly n: number;
  protected readonly channels: MessageChannels;
  protected readonly hierarchical: boolean;
  protected variant: EnvVariant = { level: 1, shifted: false };
  protected rng!: Rng;
  protected t = 0;
  protected sender = 0;
  protected message: Message | null = null;
  private solved = 0;
  private coordinated = 0;

  constructor(
    protected readonly settings: EnvSettings,
    private readonly kind: EnvKind,
    /** Index of the first message action; lower indices are the game's own actions. */
    messageBase: number,
  ) {
    this.n = settings.numAgents;
    if (this.n < 2 || this.n > MAX_ENV_AGENTS) throw new Error(`${kind}: numAgents must be 2..${MAX_ENV_AGENTS} (got ${this.n})`);
    this.channels = new MessageChannels(this.n, VOCAB, settings.protocols, messageBase);
    this.hierarchical = settings.strategy === 'hierarchical';
  }

  /** Draw the round's hidden state after the sender is chosen. */
  protected abstract newRound(): void;
  /** Game-specific observation features written at `o` (after the header). */
  protected abstract writeFeatures(agent: number, out: Float32Array, o: number): void;
  /** Valid game actions of `agent` in the act turn. */
  protected abstract markActions(agent: number, out: Float32Array, offset: number): void;
  /** Score the act turn. */
  protected abstract score(actions: ArrayLike<number>): RoundScore;
  /** The action that means "wait" for agents with nothing to do this turn. */
  protected abstract readonly waitAction: number;

  setVariant(variant: EnvVariant): void {
    this.variant = variant;
  }

  reset(rng: Rng): void {
    this.rng = rng;
    this.t = 0;
    this.solved = 0;
    this.coordinated = 0;
    this.startRound();
  }

  private startRound(): void {
    this.sender = this.hierarchical ? 0 : this.rng.int(this.n);
    this.message = null;
    this.newRound();
  }

  protected get phase(): 'communicate' | 'act' {
    return this.t % 2 === 0 ? 'communicate' : 'act';
  }

  observe(agent: number, out: Float32Array, offset: number): void {
    writeHeader(out, offset, this.kind, agent, this.phase);
    let o = offset + HEADER_SIZE;
    out[o++] = agent === this.sender ? 1 : 0;
    if (this.phase === 'act') this.channels.writeInbox(this.message, agent, out, o);
    o += inboxSize(VOCAB);
    out[o++] = Math.floor(this.t / 2) / ROUNDS;
    this.writeFeatures(agent, out, o);
  }

  actionMask(agent: number, out: Float32Array, offset: number): void {
    out.fill(0, offset, offset + ACTION_COUNT);
    if (this.phase === 'communicate') {
      if (agent === this.sender) this.channels.markAllowed(agent, out, offset);
      else out[offset + this.waitAction] = 1;
    } else this.markActions(agent, out, offset);
  }

  step(actions: ArrayLike<number>): StepResult {
    if (this.phase === 'communicate') {
      this.message = this.channels.decode(this.sender, actions[this.sender]);
      this.t++;
      return { reward: 0, coordinationSignal: 0, deliverySignal: 0 };
    }
    const s = this.score(actions);
    if (s.solved) this.solved++;
    const coordinated = s.coordinated;
    if (coordinated) this.coordinated++;
    this.t++;
    if (this.t < this.spec.horizon) this.startRound();
    return { reward: s.reward, coordinationSignal: coordinated ? 1 / ROUNDS : 0, deliverySignal: s.deliveredToActor ? 1 / ROUNDS : 0 };
  }

  outcome(): EpisodeOutcome {
    return { success: this.solved >= ROUNDS_TO_SUCCEED, coordination: this.coordinated / ROUNDS };
  }

  protected baseSpec(): Pick<
    EnvSpec,
    'id' | 'type' | 'kind' | 'observationSize' | 'numAgents' | 'horizon' | 'rewardScale' | 'creditSegment'
  > {
    // A round (communicate + act) is drawn afresh and scored on its own: credit never crosses rounds.
    return {
      id: this.settings.id,
      type: 'interactive',
      kind: this.kind,
      observationSize: 0,
      numAgents: this.n,
      horizon: 2 * ROUNDS,
      rewardScale: 1,
      creditSegment: 2,
    };
  }
}

const OBJECTS = 4;
const MAX_CANDIDATES = 3;
const REF_WAIT = MAX_CANDIDATES; // action 3
const REF_MESSAGE_BASE = MAX_CANDIDATES + 1;

/**
 * Speaker/listener referential game. Each round MAX_CANDIDATES candidate objects (of OBJECTS kinds) are
 * drawn. The sender sees the candidates, which of them is the target, and which agent must guess; that
 * listener sees the same candidates but not the target, and must pick it. Only a message can tell it.
 */
export class ReferentialGame extends RoundGame {
  readonly spec: EnvSpec;
  protected readonly waitAction = REF_WAIT;
  private candidates: number[] = [];
  private targetIndex = 0;
  private guesser = 1;

  constructor(settings: EnvSettings) {
    super(settings, 'referential', REF_MESSAGE_BASE);
    const labels = [...Array.from({ length: MAX_CANDIDATES }, (_, k) => `pick candidate ${k}`), 'wait', ...this.channels.labels()];
    this.spec = {
      ...this.baseSpec(),
      name: 'Referential game (speaker/listener)',
      description:
        `${ROUNDS} rounds. The sender sees ${MAX_CANDIDATES} candidate objects, which one is the target and which listener must guess; ` +
        `that listener sees the candidates only and picks one (+1 if it is the target). ${VOCAB} message tokens; ` +
        `a direct message reaches only its addressee, a broadcast reaches everyone. ` +
        (this.hierarchical ? 'Hierarchical: agent 0 is always the sender.' : 'Decentralized: the sender changes randomly every round.') +
        ' Level 0 of the curriculum has two candidates.',
      observationSize: HEADER_SIZE + 1 + inboxSize(VOCAB) + 1 + MAX_CANDIDATES + MAX_ENV_AGENTS + 1 + MAX_CANDIDATES * OBJECTS,
      actionCount: labels.length,
      successCriterion: `the guessing listener picks the target in at least ${ROUNDS_TO_SUCCEED} of ${ROUNDS} rounds`,
      coordinationScoreDefinition:
        'message->correct-action rate: fraction of rounds in which the guessing listener received a message and picked the target',
      shiftDescription:
        'listeners see the candidates in a different (rotated) order than the sender, so the learned code must be relearned',
      curriculumLevels: 2,
      actionLabels: labelsArray(labels),
    };
  }

  private get candidateCount(): number {
    return this.variant.level === 0 ? 2 : MAX_CANDIDATES;
  }

  /** Position at which listeners see the sender's candidate k (rotated after the behaviour shift). */
  private listenerPosition(k: number): number {
    return this.variant.shifted ? (k + 1) % this.candidateCount : k;
  }

  protected newRound(): void {
    this.candidates = this.rng.permutation(OBJECTS).slice(0, this.candidateCount);
    this.targetIndex = this.rng.int(this.candidateCount);
    const others = Array.from({ length: this.n }, (_, i) => i).filter((i) => i !== this.sender);
    this.guesser = others[this.rng.int(others.length)];
  }

  protected writeFeatures(agent: number, out: Float32Array, o: number): void {
    const isSender = agent === this.sender;
    if (isSender) {
      out[o + this.targetIndex] = 1;
      out[o + MAX_CANDIDATES + this.guesser] = 1;
    }
    o += MAX_CANDIDATES + MAX_ENV_AGENTS;
    out[o++] = agent === this.guesser ? 1 : 0;
    this.candidates.forEach((obj, k) => {
      const at = isSender ? k : this.listenerPosition(k);
      out[o + at * OBJECTS + obj] = 1;
    });
  }

  protected markActions(agent: number, out: Float32Array, offset: number): void {
    if (agent === this.guesser) out.fill(1, offset, offset + this.candidateCount);
    else out[offset + REF_WAIT] = 1;
  }

  protected score(actions: ArrayLike<number>): RoundScore {
    const solved = actions[this.guesser] === this.listenerPosition(this.targetIndex);
    const delivered = this.message !== null && this.channels.receives(this.message, this.guesser);
    return { reward: solved ? 1 : 0, solved, coordinated: solved && delivered, deliveredToActor: delivered };
  }
}

const DEL_IDLE = 0;
const DEL_EXECUTE = 1;
const DEL_MESSAGE_BASE = 2;
const MAX_SKILLS = MAX_ENV_AGENTS;

/**
 * Task delegation. Each round a task arrives at the sender; only the sender sees its type. Every task type
 * needs one skill (a fixed rule the agents must learn) and every other agent knows its own skill. The
 * sender must route the task (direct message to the right agent, or broadcast what is needed) so that
 * the agent with the skill executes it and nobody else does.
 * Hierarchical: agent 0 is a manager without skills; the others hold distinct skills.
 * Decentralized: everyone holds a distinct skill; tasks arrive at a random agent that lacks the skill.
 */
export class DelegationGame extends RoundGame {
  readonly spec: EnvSpec;
  protected readonly waitAction = DEL_IDLE;
  private readonly skillOf: number[]; // skill of each slot, -1 for the manager
  private readonly skillCount: number;
  private taskType = 0;
  private skilled = 1;

  constructor(settings: EnvSettings) {
    super(settings, 'delegation', DEL_MESSAGE_BASE);
    this.skillOf = Array.from({ length: this.n }, (_, i) => (this.hierarchical ? i - 1 : i));
    this.skillCount = this.hierarchical ? this.n - 1 : this.n;
    const labels = ['idle', 'execute the task', ...this.channels.labels()];
    this.spec = {
      ...this.baseSpec(),
      name: 'Task delegation',
      description:
        `${ROUNDS} rounds. A task arrives at the sender, the only agent that sees its type; the type decides which of ${this.skillCount} skills it needs ` +
        `(a fixed rule). Each agent knows its own skill. The others then choose execute or idle: +1 if the skilled agent executes, -0.5 per other executor. ` +
        (this.hierarchical
          ? 'Hierarchical: agent 0 is a manager (no skill) that receives every task.'
          : 'Decentralized: tasks arrive at a random agent lacking the skill.') +
        ' Level 0 of the curriculum shows the task type to everyone.',
      observationSize: HEADER_SIZE + 1 + inboxSize(VOCAB) + 1 + 2 * MAX_SKILLS + 1,
      actionCount: labels.length,
      successCriterion: `the task is executed by exactly the skilled agent in at least ${ROUNDS_TO_SUCCEED} of ${ROUNDS} rounds`,
      coordinationScoreDefinition:
        'correct delegation rate: fraction of rounds in which exactly the skilled agent executed the task (how the sender routed it is up to the team: ' +
        'learned protocols may also signal by whom a direct message does NOT reach)',
      shiftDescription: 'the task-to-skill rule is rotated (every task type now needs the next skill)',
      curriculumLevels: 2,
      actionLabels: labelsArray(labels),
    };
  }

  private requiredSkill(type: number): number {
    return this.variant.shifted ? (type + 1) % this.skillCount : type;
  }

  protected newRound(): void {
    const ownSkill = this.skillOf[this.sender];
    do this.taskType = this.rng.int(this.skillCount);
    while (this.requiredSkill(this.taskType) === ownSkill);
    this.skilled = this.skillOf.indexOf(this.requiredSkill(this.taskType));
  }

  protected writeFeatures(agent: number, out: Float32Array, o: number): void {
    // Level 0 makes the task public (no message needed); from level 1 only the sender sees it.
    if (agent === this.sender || this.variant.level === 0) out[o + this.taskType] = 1;
    if (this.skillOf[agent] >= 0) out[o + MAX_SKILLS + this.skillOf[agent]] = 1;
    out[o + 2 * MAX_SKILLS] = agent === this.sender ? 0 : 1; // "I may be asked to execute"
  }

  protected markActions(agent: number, out: Float32Array, offset: number): void {
    out[offset + DEL_IDLE] = 1;
    if (agent !== this.sender) out[offset + DEL_EXECUTE] = 1;
  }

  protected score(actions: ArrayLike<number>): RoundScore {
    let wrong = 0;
    for (let i = 0; i < this.n; i++) if (i !== this.skilled && actions[i] === DEL_EXECUTE) wrong++;
    const done = actions[this.skilled] === DEL_EXECUTE;
    const delivered = this.message !== null && this.channels.receives(this.message, this.skilled);
    const solved = done && wrong === 0;
    return { reward: (done ? 1 : 0) - 0.5 * wrong, solved, coordinated: solved, deliveredToActor: delivered };
  }
}
