// typescript-eslint's recommended type-checked rules for all TypeScript, plus the Temporal samples'
// guards: no floating promises anywhere, no Node built-ins in workflow code (the workflow sandbox is
// deterministic and has no I/O), and the one-way import structure of ARCHITECTURE.md.
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.forge/**', 'dist/**', 'bin/**', 'scripts/**/*.js', '*.config.*', 'docker/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // tfjs and JSON.parse hand back `any` at many boundaries that zod or a shape check guards next.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // Progress and child-process code awaits on purpose in sync-looking helpers.
      '@typescript-eslint/require-await': 'off',
      // Shapes (number[]) and exhaustive-switch leftovers (never) read fine in error messages.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowArray: true, allowNever: true },
      ],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code must stay deterministic: no Node built-ins.' })),
          patterns: [
            {
              regex: '^(\\.\\./)+activities/(agent|cognate)(/(activities|index))?$',
              allowTypeImports: true,
              message: 'Workflows import only activity *types*.',
            },
            { regex: '^(\\.\\./)+activities/.+/engine/', allowTypeImports: true, message: 'Workflows import only types from engine code.' },
          ],
        },
      ],
    },
  },
  {
    files: ['activities/agent/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.{1,2}/(.*/)?(workflows|client|cli|workers|cognate)(/|$)',
              message: 'agent never imports cognate, nor workflow, client, CLI or worker code.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['activities/cognate/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.{1,2}/(.*/)?(workflows|client|cli|workers|agent)(/|$)',
              message: 'cognate never imports agent, nor workflow, client, CLI or worker code.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['common/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.{1,2}/(.*/)?(workflows|activities|client|cli|workers)(/|$)',
              message: 'common/ depends on no pipeline and no entry point.',
            },
          ],
        },
      ],
    },
  },
);
