import { describe, expect, it } from "vitest";
import { captionFlags, isRefusal, isRepetitive } from "../../src/answer/degenerate.js";

const loops: [string, string][] = [
  [
    "a phrase looping until the budget ran out",
    "The image shows a red bicycle leaning against a brick wall, with the the the the the the the the the the the the the",
  ],
  [
    "one sentence, over and over",
    "A dog runs on the beach. A dog runs on the beach. A dog runs on the beach. A dog runs on the beach.",
  ],
  [
    "a two-word phrase, four times",
    "There is a sign that reads open now, open now, open now, open now and a door.",
  ],
  [
    "list items repeating",
    "Objects in the image:\n- a wooden chair\n- a lamp\n- a wooden chair\n- a lamp\n- a wooden chair\n- a lamp\n- a wooden chair",
  ],
  [
    "tags repeating, as a tagger loops",
    "1girl, solo, long hair, smile, long hair, smile, long hair, smile, long hair, smile, long hair",
  ],
  ["the same short line three times", "Blue sky.\nBlue sky.\nBlue sky."],
];

const refusals: [string, string][] = [
  ["I'm sorry", "I'm sorry, but I can't help with identifying the people in this image."],
  ["I cannot", "I cannot help with that request."],
  ["typographic apostrophe", "I\u2019m sorry, I can\u2019t describe this image."],
  ["unable", "I am unable to provide a description of this image."],
  ["as an AI", "As an AI language model, I cannot view images."],
  [
    "unfortunately",
    "Unfortunately, I can't assist with this image because it may contain sensitive content.",
  ],
  ["apology", "I apologize, but I won't be able to caption this picture."],
  ["discomfort", "I do not feel comfortable describing this image."],
  ["passive", "This image cannot be described as it appears to contain explicit content."],
];

const honest: [string, string][] = [
  [
    "a long detailed caption",
    "A weathered fishing boat rests on a pebble beach at low tide, its blue hull streaked with rust and its nets piled in the stern. Behind it, a row of pastel houses climbs the hillside under a pale, overcast sky, and two gulls stand on the harbour wall. The water in the foreground is flat and grey, reflecting the boat's mast.",
  ],
  [
    "a caption that quotes an apology on a sign",
    'A shop window with a handwritten sign that says "Sorry, we\'re closed" taped to the glass, and a bicycle parked outside.',
  ],
  ["a natural double word", "A very, very small kitten curled up in a shoe box."],
  [
    "words repeated but not in a row",
    "A red car beside a red door, a red mailbox and a red bicycle on a grey street.",
  ],
  [
    "tags without loops",
    "1girl, solo, long hair, smile, outdoors, red hat, looking at viewer, upper body, blue sky, cloud",
  ],
  [
    "a numbered list of different items",
    "1. A mug of coffee\n2. A laptop\n3. A notebook with a pen\n4. A potted plant",
  ],
  [
    "a caveat, then the caption",
    "I can't identify the person, but the image shows a woman in a red coat standing at a tram stop in the rain, holding a folded umbrella, with shop windows lit behind her.",
  ],
  [
    "nothing of the kind asked for",
    "I cannot see any people in this image; it shows an empty beach",
  ],
  ["an apology for the photo", "Sorry, this is a blurry photo of a cat"],
  [
    "a caption that mentions refusal in passing",
    "A protester holds a placard reading I cannot stay silent, in front of a crowd.",
  ],
];

describe("degenerate captions", () => {
  it.each(loops)("flags repetition: %s", (_, text) => {
    expect(isRepetitive(text)).toBe(true);
    expect(captionFlags(text, false)).toContain("repetition");
  });

  it.each(refusals)("flags a refusal: %s", (_, text) => {
    expect(isRefusal(text)).toBe(true);
    expect(captionFlags(text, false)).toEqual(["refusal"]);
  });

  it.each(honest)("leaves an honest caption alone: %s", (_, text) => {
    expect(captionFlags(text, false)).toEqual([]);
  });

  it("flags a cut-off reply that went round in circles without an exact loop", () => {
    const circling =
      "The image shows a cat on a sofa. The cat is sitting on the sofa and the sofa is grey. The image shows a cat on a grey sofa. The cat on the sofa is sitting and the sofa is grey. The image shows a grey sofa with a cat on it. The cat is sitting on the sofa and the sofa is grey. The image shows a cat on a sofa that is grey. The cat is sitting on the grey sofa and the sofa is";
    expect(isRepetitive(circling, false)).toBe(false);
    expect(captionFlags(circling, true)).toEqual(["repetition", "truncated"]);
  });

  it("marks a reply cut at the token budget as truncated, and nothing else when it is honest", () => {
    expect(captionFlags("A tall lighthouse on a rocky point, its lamp", true)).toEqual([
      "truncated",
    ]);
  });
});
