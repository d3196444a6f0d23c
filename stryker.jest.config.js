// Jest for StrykerJS (stryker.config.js): the `unit` project of jest.config.js alone, as a plain
// config. The `cluster` project needs a real Kubernetes and is never run under mutation.
import base from './jest.config.js';

const unit = base.projects.find((project) => project.displayName === 'unit');
if (!unit) throw new Error('jest.config.js has no project named unit');

export default unit;
