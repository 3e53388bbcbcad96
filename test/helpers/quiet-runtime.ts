// Test output keeps the SDK's warnings and errors, not its INFO chatter (bundles, worker state changes).
import { DefaultLogger, Runtime } from '@temporalio/worker';

try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // Already installed by an earlier test file in this process.
}
