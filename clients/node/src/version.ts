/** Version of this SDK, sent as `Hello.sdk_version`; kept equal to `package.json`'s `version`. */
export const SDK_VERSION = '0.1.0';

/** Language announced in `Hello.language`. */
export const SDK_LANGUAGE = 'node';
