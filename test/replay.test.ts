// Deploy safety: histories recorded from the previous release's workflow code (test/histories/, made with
// scripts/record-histories.ts at that commit) must replay against today's workflow code without
// nondeterminism errors. A workflow change that would break them must be guarded with patched() (README).
import fs from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

const DIR = path.join(__dirname, 'histories');
const recorded = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

test('the recorded histories cover both pipelines', () => {
  expect(recorded.some((f) => f.startsWith('cognate-'))).toBe(true);
  expect(recorded.some((f) => f.startsWith('agent-'))).toBe(true);
});

test.each(recorded)('%s replays against the current workflow code', async (file) => {
  const pipeline = file.startsWith('cognate-') ? 'cognate' : 'agent';
  const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')));
  await Worker.runReplayHistory({ workflowsPath: require.resolve(`../workflows/${pipeline}`) }, history, `replay-${file}`);
});

test('replay notices a history that today\'s code cannot produce (the check can fail)', async () => {
  const json = JSON.parse(fs.readFileSync(path.join(DIR, recorded.find((f) => f.startsWith('cognate-'))!), 'utf8'));
  // Pretend the previous release scheduled another activity first: today's code schedules prepareDatasets there.
  const scheduled = json.events.find((e: Record<string, unknown>) => e.activityTaskScheduledEventAttributes).activityTaskScheduledEventAttributes;
  expect(scheduled.activityType.name).toBe('prepareDatasets');
  scheduled.activityType.name = 'createModelArtifacts';
  await expect(Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows/cognate') }, historyFromJSON(json), 'replay-mismatch')).rejects.toThrow(/[Nn]ondeterminism/);
});
