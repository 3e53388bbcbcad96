// Guards from the Temporal samples: no floating promises anywhere, and no Node built-ins in
// workflow code (the workflow sandbox is deterministic and has no I/O).
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.forge/**', 'dist/**', 'bin/**', 'scripts/**/*.js', '*.config.*'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [...builtinModules, ...builtinModules.map((m) => `node:${m}`)].map((name) => ({ name, message: 'Workflow code must stay deterministic: no Node built-ins.' })) },
      ],
    },
  },
);
