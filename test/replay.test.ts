// Deploy safety: histories recorded from the previous release's workflow code (test/histories/, made with
// scripts/record-histories.ts at that commit) must replay against today's workflow code without
// nondeterminism errors. A workflow change that would break them must be guarded with patched() (README).
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';

const DIR = path.join(__dirname, 'histories');
// The .binpb files are what replays (the .json beside each is for reading: this SDK's JSON conversion trips
// over two protobufjs copies in the dependency tree).
const recorded = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.binpb'))
  .sort();
const load = (file: string) => temporal.api.history.v1.History.decode(fs.readFileSync(path.join(DIR, file)));

test('the recorded histories cover both pipelines', () => {
  expect(recorded.some((f) => f.startsWith('cognate-'))).toBe(true);
  expect(recorded.some((f) => f.startsWith('agent-'))).toBe(true);
});

test.each(recorded)('%s replays against the current workflow code', async (file) => {
  const pipeline = file.startsWith('cognate-') ? 'cognate' : 'agent';
  await Worker.runReplayHistory({ workflowsPath: require.resolve(`../workflows/${pipeline}`) }, load(file), `replay-${file}`);
});

test("replay notices a history that today's code cannot produce (the check can fail)", async () => {
  const history = load(recorded.find((f) => f.startsWith('cognate-'))!);
  // Pretend the previous release scheduled another activity first: today's code schedules prepareDatasets there.
  const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes)!.activityTaskScheduledEventAttributes!;
  expect(scheduled.activityType!.name).toBe('prepareDatasets');
  scheduled.activityType!.name = 'createModelArtifacts';
  await expect(
    Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows/cognate') }, history, 'replay-mismatch'),
  ).rejects.toThrow(/[Nn]ondeterminism/);
});
