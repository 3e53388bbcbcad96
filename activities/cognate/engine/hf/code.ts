// The PyTorch implementation of the Cognate model that ships with every export, so that
// `AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)` loads it.
//
// The Python sources live here, beside model.ts whose computation they mirror line by line (a change to one
// is meant to be seen next to the other); the export copies them byte for byte into the artifact and
// config.json's `auto_map` points transformers at them. test/cognate-hf.test.ts holds the two to the same logits.
import fs from 'node:fs';
import path from 'node:path';

export const HF_CODE_DIR = __dirname;
export const HF_CODE_FILES = ['configuration_cognate.py', 'modeling_cognate.py'] as const;

/** config.json `auto_map`: module.Class of each Auto class, resolved inside the artifact dir. */
export const HF_AUTO_MAP = {
  AutoConfig: 'configuration_cognate.CognateConfig',
  AutoModelForCausalLM: 'modeling_cognate.CognateForCausalLM',
} as const;

/** The Python files as artifact entries (name → bytes). Throws naming the file when one is missing. */
export function hfCodeFiles(): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const name of HF_CODE_FILES) {
    const file = path.join(HF_CODE_DIR, name);
    if (!fs.existsSync(file)) throw new Error(`Cognate export: PyTorch source ${file} is missing`);
    files[name] = fs.readFileSync(file);
  }
  return files;
}
