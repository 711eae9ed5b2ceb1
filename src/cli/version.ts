/** The CLI's version (`tenantctl --version`); the same as package.json's (a test checks). */
export const VERSION = '0.1.0';
