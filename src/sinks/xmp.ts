import type { Element } from "@xmldom/xmldom";
import { loadWhenNeeded } from "../util/load.js";

const xmldom = () => loadWhenNeeded("@xmldom/xmldom") as typeof import("@xmldom/xmldom");

import { xmlSafe } from "../trust/text.js";

const NS = {
  x: "adobe:ns:meta/",
  rdf: "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
  dc: "http://purl.org/dc/elements/1.1/",
  xml: "http://www.w3.org/XML/1998/namespace",
  xmlns: "http://www.w3.org/2000/xmlns/",
  lr: "http://ns.adobe.com/lightroom/1.0/",
  digiKam: "http://www.digikam.org/ns/1.0/",
} as const;

/**
 * Where tags go: photo managers each read another field (Immich digiKam:TagsList, then
 * lr:hierarchicalSubject; darktable the latter, else dc:subject; digiKam and Lightroom
 * dc:subject), so all three are written, each in the array form XMP defines for it.
 */
const TAG_FIELDS = [
  { ns: NS.dc, prefix: "dc", name: "subject", array: "Bag" },
  { ns: NS.lr, prefix: "lr", name: "hierarchicalSubject", array: "Bag" },
  { ns: NS.digiKam, prefix: "digiKam", name: "TagsList", array: "Seq" },
] as const;

/**
 * Puts `caption` into an XMP packet as `dc:description` in the `x-default` language, and returns
 * the packet. An existing packet is edited in place through an XML DOM: every other property,
 * attribute, namespace and language alternative in it (ratings, labels, a darktable history) is
 * kept as it was. `tags` are added to the tag fields, after any tags already there. Throws when
 * `existing` is not XML with an rdf:RDF in it. What a server sent loses the characters XML 1.0
 * forbids (a NUL, `\x0b`, U+FFFE, a lone surrogate), which would make every reader reject the file
 * and the user's rating and tags with it.
 */
export function mergeDescription(
  existing: string | null,
  answered: string,
  answeredTags: readonly string[] = [],
): string {
  const caption = xmlSafe(answered);
  const tags = answeredTags.map(xmlSafe).filter((tag) => tag !== "");
  const document =
    existing === null || existing.trim() === ""
      ? emptyPacket()
      : new (xmldom().DOMParser)({ onError: rejectXml }).parseFromString(existing, "text/xml");
  const rdf = document.getElementsByTagNameNS(NS.rdf, "RDF")[0];
  if (!rdf) throw new Error("no rdf:RDF element in the XMP sidecar");
  const descriptions = elements(rdf.getElementsByTagNameNS(NS.rdf, "Description"));
  // The description that already says something in Dublin Core, else the first one.
  let target =
    descriptions.find((node) => node.getElementsByTagNameNS(NS.dc, "description").length > 0) ??
    descriptions.find((node) => node.hasAttributeNS(NS.dc, "description")) ??
    descriptions[0];
  if (!target) {
    target = document.createElementNS(NS.rdf, "rdf:Description");
    target.setAttributeNS(NS.rdf, "rdf:about", "");
    rdf.appendChild(target);
  }
  if (!target.lookupPrefix(NS.dc) && target.lookupNamespaceURI("dc") !== NS.dc) {
    target.setAttributeNS(NS.xmlns, "xmlns:dc", NS.dc);
  }
  // A plain attribute cannot hold language alternatives; its text becomes the x-default one.
  target.removeAttributeNS(NS.dc, "description");
  let property = target.getElementsByTagNameNS(NS.dc, "description")[0];
  if (!property) {
    property = document.createElementNS(NS.dc, "dc:description");
    target.appendChild(property);
  }
  let alt = property.getElementsByTagNameNS(NS.rdf, "Alt")[0];
  if (!alt) {
    while (property.firstChild) property.removeChild(property.firstChild);
    alt = document.createElementNS(NS.rdf, "rdf:Alt");
    property.appendChild(alt);
  }
  const items = elements(alt.getElementsByTagNameNS(NS.rdf, "li"));
  let item = items.find((node) => node.getAttributeNS(NS.xml, "lang") === "x-default");
  if (!item) {
    item = document.createElementNS(NS.rdf, "rdf:li");
    item.setAttributeNS(NS.xml, "xml:lang", "x-default");
    // x-default comes first among the alternatives, as XMP readers expect.
    alt.insertBefore(item, alt.firstChild);
  }
  while (item.firstChild) item.removeChild(item.firstChild);
  item.appendChild(document.createTextNode(caption));
  if (tags.length > 0) for (const field of TAG_FIELDS) mergeTags(target, field, tags);
  return `${new (xmldom().XMLSerializer)().serializeToString(document).trim()}\n`;
}

/** Whether `text` is XML holding an rdf:RDF, so a description can be merged into it. */
export function isPacket(text: string): boolean {
  try {
    const document = new (xmldom().DOMParser)({ onError: rejectXml }).parseFromString(
      text,
      "text/xml",
    );
    return document.getElementsByTagNameNS(NS.rdf, "RDF").length > 0;
  } catch {
    return false;
  }
}

/** The x-default `dc:description` of a packet, or null when it has none. */
export function readDescription(packet: string): string | null {
  let document: ReturnType<import("@xmldom/xmldom").DOMParser["parseFromString"]>;
  try {
    document = new (xmldom().DOMParser)({ onError: rejectXml }).parseFromString(packet, "text/xml");
  } catch {
    return null;
  }
  for (const property of elements(document.getElementsByTagNameNS(NS.dc, "description"))) {
    for (const item of elements(property.getElementsByTagNameNS(NS.rdf, "li"))) {
      if (item.getAttributeNS(NS.xml, "lang") === "x-default") return item.textContent ?? "";
    }
  }
  return null;
}

function mergeTags(
  target: Element,
  field: (typeof TAG_FIELDS)[number],
  tags: readonly string[],
): void {
  const document = target.ownerDocument;
  if (!document) return;
  if (target.lookupNamespaceURI(field.prefix) !== field.ns) {
    target.setAttributeNS(NS.xmlns, `xmlns:${field.prefix}`, field.ns);
  }
  let property = target.getElementsByTagNameNS(field.ns, field.name)[0];
  if (!property) {
    property = document.createElementNS(field.ns, `${field.prefix}:${field.name}`);
    target.appendChild(property);
  }
  // Whatever array the file already uses is kept; a new one gets the form XMP defines.
  let list =
    property.getElementsByTagNameNS(NS.rdf, "Bag")[0] ??
    property.getElementsByTagNameNS(NS.rdf, "Seq")[0];
  if (!list) {
    list = document.createElementNS(NS.rdf, `rdf:${field.array}`);
    property.appendChild(list);
  }
  const present = new Set(
    elements(list.getElementsByTagNameNS(NS.rdf, "li")).map((node) => node.textContent ?? ""),
  );
  for (const tag of tags) {
    if (present.has(tag)) continue;
    const item = document.createElementNS(NS.rdf, "rdf:li");
    item.appendChild(document.createTextNode(tag));
    list.appendChild(item);
    present.add(tag);
  }
}

function elements(list: { length: number; item(index: number): Element | null }): Element[] {
  const found: Element[] = [];
  for (let i = 0; i < list.length; i += 1) {
    const node = list.item(i);
    if (node) found.push(node);
  }
  return found;
}

function emptyPacket() {
  const document = new (xmldom().DOMImplementation)().createDocument(NS.x, "x:xmpmeta", null);
  const meta = document.documentElement;
  if (!meta) throw new Error("could not create an XMP packet");
  meta.setAttributeNS(NS.xmlns, "xmlns:x", NS.x);
  const rdf = document.createElementNS(NS.rdf, "rdf:RDF");
  rdf.setAttributeNS(NS.xmlns, "xmlns:rdf", NS.rdf);
  meta.appendChild(rdf);
  const description = document.createElementNS(NS.rdf, "rdf:Description");
  description.setAttributeNS(NS.rdf, "rdf:about", "");
  rdf.appendChild(description);
  return document;
}

function rejectXml(level: string, message: string): void {
  if (level !== "warning") throw new Error(`not valid XML: ${message}`);
}
