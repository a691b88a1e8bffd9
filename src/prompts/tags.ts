/**
 * `--tags`: a ready prompt and schema for the booru-style tag lists that taggers for training sets
 * produce (short, lower case, most important first), one list per image.
 */
export const TAGS_PROMPT =
  "Tag this image for a training dataset, the way image taggers do: short lowercase tags of one " +
  "to three words (the subject, its attributes, clothing, pose, the setting, lighting, style, " +
  "notable objects and any visible text), most important first, no sentences and no duplicates.";

export const TAGS_SCHEMA: Record<string, unknown> = {
  title: "image_tags",
  type: "object",
  properties: {
    tags: {
      type: "array",
      items: { type: "string", minLength: 1, maxLength: 40 },
      minItems: 1,
      maxItems: 40,
    },
  },
  required: ["tags"],
  additionalProperties: false,
};
