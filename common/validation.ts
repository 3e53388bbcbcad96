// zod helpers shared by every entry point (CLI, client helpers, workflows). Pure: workflow code imports it.
import { z } from 'zod';

/** A name that becomes a path segment: sessionId, agent id, model name. */
export const SafeName = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'may contain only letters, digits, "_", "-" and "." and must start with a letter or digit')
  .refine((s) => !s.includes('..'), 'must not contain ".."');

/** One line per problem, each naming the field path: `config.maxEpisodes: Too small: expected number to be >0`. */
export function formatZodError(error: z.ZodError, root = ''): string {
  return error.issues
    .map((issue) => {
      const field = [root, ...issue.path.map(String)].filter(Boolean).join('.') || '(input)';
      return `${field}: ${issue.message}`;
    })
    .join('; ');
}

export class InvalidInputError extends Error {
  constructor(readonly details: string) {
    super(`invalid input: ${details}`);
    this.name = 'InvalidInputError';
  }
}

/** Parse or throw an InvalidInputError whose message names every bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, root = ''): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new InvalidInputError(formatZodError(result.error, root));
  return result.data;
}
