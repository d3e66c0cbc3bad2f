// Type-aware linting: in an async code base the rules that matter most are the promise ones
// (no floating or misused promises), and they need type information.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', '.cache/', 'bench/results/', 'bench/peers/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js', 'bin/*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/return-await': ['error', 'always'],
      '@typescript-eslint/consistent-type-imports': 'error',
      // A `using` declaration's value is held for its disposal at the end of the block.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreUsingDeclarations: true }],
      // Fastify handlers are async functions that return their reply, awaiting or not.
      '@typescript-eslint/require-await': 'off',
      eqeqeq: 'error',
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The browser modules: their globals (document, fetch…) are the DOM's, which TypeScript knows
    // from their tsconfig; no-undef would only repeat that check without the types.
    files: ['src/web/public/**/*.js'],
    rules: { 'no-undef': 'off' },
  },
  {
    // Tests read JSON bodies (typed any) and poke at them; the assertions are the type check.
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
)
